# The course's two commands (see README.md):
#   make course   set everything up (virtual environment, package, Jupyter kernel) and open JupyterLab
#   make test     run the whole test suite (library, exercise checks, notebooks under nbval)
# Other targets: make setup (no JupyterLab), make notebooks (re-execute the .ipynb from the .py
# sources), make student (the student edition), make benchmarks.

PYTHON ?= python3
# The offline MNIST copy beside the repository, when there is one (CI and this course's machines).
export LESSONS_LIB_MNIST_DIR ?= $(if $(wildcard ../shared/data/mnist/t10k-images-idx3-ubyte.gz),$(abspath ../shared/data/mnist))
VENV   ?= .venv
BIN    := $(VENV)/bin
# torch is pinned here (not in pyproject.toml): 2.13.0 is the CPU build that installs offline.
TORCH  ?= torch==2.13.0

.PHONY: course setup test notebooks student benchmarks clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[course,dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (score matching)" >/dev/null
	touch $@

setup: $(BIN)/.installed

course: setup
	$(BIN)/jupyter lab notebooks/01_score_function.ipynb

test: setup
	$(BIN)/python -m pytest

notebooks: setup
	$(BIN)/python -m tools.build_notebooks $(NB)

student: setup
	$(BIN)/python -m lessons_lib.student_edition notebooks student

benchmarks: setup
	$(BIN)/python -m benchmarks.run

clean:
	rm -rf $(VENV) student artifacts .pytest_cache
