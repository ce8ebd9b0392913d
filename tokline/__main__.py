from tokline.cli import main

raise SystemExit(main())
