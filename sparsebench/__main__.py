from sparsebench.cli import main

main()
