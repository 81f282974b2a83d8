"""pyinfra inventory: the hosts named by OCI_HOST and friends (see hosts.py).

pyinfra reads module-level lists of hosts as groups; group_data/all.py has the defaults.
"""

from infra.hosts import hosts_from_env

app_servers = hosts_from_env()
