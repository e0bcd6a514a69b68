"""Where a benchmark runs: the shared implementation of every folder's scripts (``scripts``), the Docker-or-native
launcher (``launch``), the base image (``Dockerfile``), the Backend.AI variant writer (``backendai``) and the
Slurm example (``slurm_train.sh``). Standard library only: a Docker host needs no virtual environment."""
