from saleskpi.surfaces.cli.main import main

main()
