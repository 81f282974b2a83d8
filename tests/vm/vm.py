"""The lanes' names for the VM machinery, which lives in infra/vm.py (the sandbox's code).

The lanes boot exactly the guest `python -m infra sandbox up` boots; this module only
keeps their `from vm import TestVM` working.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from infra.vm import CADDY_BIN, QEMU, VM, SSHError, VMError, ensure_image, free_port, image_dir  # noqa: E402

TestVM = VM

__all__ = ["CADDY_BIN", "QEMU", "SSHError", "TestVM", "VMError", "ensure_image", "free_port", "image_dir"]
