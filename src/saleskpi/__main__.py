from saleskpi.surfaces.cli.app import main

main()
