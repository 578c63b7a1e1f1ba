"""The host side of dmagent, a library first and the `dmagent` CLI second: client/ (talking to a
device), runtime/ (running the agent here), flash/ (putting it on a board), vboard/ (the virtual
board), bench/ (benchmarks, soak), cli/ (thin commands); paths.py finds the project's files."""
