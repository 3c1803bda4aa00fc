from crp_gateway.cli import main

raise SystemExit(main())
