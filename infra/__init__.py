"""milesahead's deployment toolkit: pyinfra deploys plus a small operator CLI.

Run `python -m infra --help`. The pieces, in the order a deploy uses them:
inventory.py (hosts from the environment), group_data/all.py (defaults),
secrets.py (what setup needs from the environment), release.py (the archive),
tasks/ (the @deploy functions), deploys/ (pyinfra entry files), templates/, files/.
vm.py boots a throw-away VM shaped like the production host (files/build-image.sh
makes its image): the VM lanes test against it.
"""
