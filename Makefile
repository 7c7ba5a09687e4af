# Production serving: `make serve` (see README, "Production"): nginx in front of gunicorn.
# Everything else is in scripts/.
PYTHON ?= .venv/bin/python
BIND ?= 127.0.0.1:8000

.PHONY: serve check-deploy

serve:
	$(PYTHON) manage.py install_model "$${CUTOUT_MODEL:-u2net}"
	$(PYTHON) manage.py migrate --noinput
	$(PYTHON) manage.py collectstatic --noinput -v0
	$(PYTHON) manage.py serve --bind $(BIND)

check-deploy:
	$(PYTHON) manage.py check --deploy --fail-level WARNING
