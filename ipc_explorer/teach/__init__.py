"""Teaching: step through real IPC stage by stage (``step``), see why a process is blocked
from the kernel's own account (``why``), and run prepared lessons that check their own claims
(``lessons``). Built on the other faces; every fact shown says where it came from."""
