from ipc_explorer.cli import main

raise SystemExit(main())
