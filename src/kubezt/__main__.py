from kubezt.cli.main import main

main()
