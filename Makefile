# t2ilab: `make book` builds the rendered course, `make test` runs unit tests and every notebook.
# VENV can point outside the clone (.ci/run keys one by the hash of requirements.txt).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.t2ilab-requirements-installed

.PHONY: setup test book lab data student clean

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install -r requirements.txt
	touch $(STAMP)

# The editable install is redone whenever the venv points at another checkout (a venv shared by clones);
# -I keeps the current directory off sys.path, so the check sees what notebooks' kernels will see.
setup: $(STAMP)
	@$(BIN)/python -I -c "import pathlib, t2ilab; assert pathlib.Path(t2ilab.__file__).resolve().parent == pathlib.Path('t2ilab').resolve()" 2>/dev/null \
	  || $(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .

data: setup
	$(BIN)/t2ilab data

test: setup
	$(BIN)/python -m pytest tests book --nbval-lax --nbval-current-env -p no:cacheprovider

book: setup
	$(BIN)/jupyter-book build . --warningiserror --keep-going
	@echo "The course is in _build/html/index.html"

# every chapter without the exercise solutions and with outputs cleared, for handing out
student: setup
	$(BIN)/python -m t2ilab.student book _build/student

lab: setup
	$(BIN)/jupyter lab book/

clean:
	rm -rf _build
