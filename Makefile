# t2ilab: `make book` builds the rendered course, `make test` runs unit tests and every notebook.
# VENV can point outside the clone (.ci/run keys one by the hash of requirements.txt).
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.t2ilab-requirements-installed

.PHONY: setup test book check-book lab data student clean

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

# the built book opened in headless Chromium, page by page (installs Debian's chromium if missing)
check-book: setup
	bash tests/browser/install_chromium.sh
	$(BIN)/python tests/browser/check_book.py _build/html --screenshots _build/screenshots

# every chapter without the exercise solutions and with outputs cleared, for handing out
student: setup
	$(BIN)/python -m t2ilab.student book _build/student

lab: setup
	$(BIN)/jupyter lab book/

clean:
	rm -rf _build
