from dmagent.host_tools.cli.main import main

main()
