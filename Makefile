# The course's two commands (see README.md):
#   make course   set everything up (virtual environment, package, Jupyter kernel) and open JupyterLab
#   make test     run the whole test suite (library, exercise checks, notebooks under nbval, browser)
# While you work: make check   the linter and every test not marked slow, browser or notebooks.
# Other targets: make setup (no JupyterLab), make notebooks (re-execute the .ipynb from the .py
# sources), make student (the student edition), make student-lab (JupyterLab on it), make homework
# [COURSE=dir] (the problem sets as an nbgrader course, ../score-matching-course by default), make book (the course as a static site in _build/book), make benchmarks, make mnist-train (download the MNIST training split; the
# test split ships in data/mnist).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# JupyterLab settings for this environment only (no news pop-up); user settings still win.
OVERRIDES := $(VENV)/share/jupyter/lab/settings/overrides.json
# torch is pinned here (not in pyproject.toml): 2.13.0 is the CPU build that installs offline.
TORCH  ?= torch==2.13.0

.PHONY: course setup test check lint notebooks student student-lab homework book benchmarks mnist-train clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[course,dev,book]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (score matching)" >/dev/null
	touch $@

$(OVERRIDES): tools/jupyterlab_overrides.json $(BIN)/.installed
	mkdir -p $(dir $@)
	cp $< $@

setup: $(BIN)/.installed $(OVERRIDES)

course: setup
	$(BIN)/jupyter lab --ServerApp.root_dir=notebooks notebooks/01_score_function.ipynb

test: lint
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .

check: lint
	$(BIN)/python -m pytest tests -q -m "not slow and not browser and not notebooks"

notebooks: setup
	$(BIN)/python -m tools.build_notebooks $(NB)

student: setup
	$(BIN)/python -m lessons_lib.course.student_edition notebooks student

# JupyterLab on the student edition only (never on the instructor notebooks in notebooks/)
student-lab: student
	$(BIN)/jupyter lab --ServerApp.root_dir=student student/01_score_function.ipynb

# The problem sets as an nbgrader course, outside the repository by default:
#   make homework [COURSE=../score-matching-course] [COURSE_ID=sm101] [FORCE=--force]
COURSE ?= ../score-matching-course
NOTEBOOKS ?= notebooks
homework: setup
	$(BIN)/python -m lessons_lib.course.homework $(NOTEBOOKS) $(COURSE) $(if $(COURSE_ID),--course-id $(COURSE_ID)) $(FORCE)

# The course as a static site, from the committed notebooks (never re-executed): _build/book
book: setup
	BOOK_REPOSITORY=$(BOOK_REPOSITORY) $(BIN)/python -m tools.build_book

benchmarks: setup
	$(BIN)/python -m benchmarks.run

mnist-train: setup
	$(BIN)/python -c "from lessons_lib.mnist import load_mnist; load_mnist('train', download=True)"

clean:
	rm -rf $(VENV) student artifacts _build .pytest_cache
