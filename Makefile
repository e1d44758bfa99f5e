# Two commands for a fresh machine: `make run` (dashboard) and `make test` (whole suite).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501

.PHONY: run test browser bench fonts starter clean

$(BIN)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt -r requirements-dev.txt
	touch $@

## run: install (first time only) and start the dashboard on http://localhost:$(PORT)
## (refuses to listen beyond this machine without a password: see README, Access)
run: $(BIN)/.installed
	$(BIN)/python -m dashboard.serve --server.port $(PORT)

## browser: Debian's chromium for the end-to-end browser tests (Playwright drives it)
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium fonts-dejavu-core; }

## test: install everything the tests need, then run the whole suite
test: $(BIN)/.installed browser
	$(BIN)/python -m pytest

## bench: speed and accuracy figures (uses ../shared/data/plates when present)
bench: $(BIN)/.installed
	$(BIN)/python bench/bench_import.py
	$(BIN)/python bench/bench_read.py

## fonts: the Debian font packages the starter model is pretrained with (docs/FONTS.md)
FONT_PACKAGES := fonts-dejavu-core fonts-dejavu-extra fonts-liberation fonts-roadgeek fonts-opendin \
  fonts-routed-gothic fonts-ocr-b fonts-b612 fonts-bebas-neue fonts-roboto-unhinted fonts-tiresias fonts-go \
  fonts-national-park fonts-clear-sans fonts-wqy-zenhei fonts-wqy-microhei
fonts:
	SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends $(FONT_PACKAGES)

## starter: pretrain the starter model engine/model/starter/starter.npz (docs/PRETRAINING.md; three stages, about three hours)
STARTER_WORK ?= /tmp/plate-studio-pretrain
STARTER_REAL = $$( [ -s $(STARTER_WORK)-tr-train.txt ] && echo --real $(STARTER_WORK)-tr-train.txt )
starter: $(BIN)/.installed fonts
	$(BIN)/python bench/split_list.py --set tr --split train $(STARTER_WORK)-tr-train.txt || true
	$(BIN)/python -m engine pretrain --work-dir $(STARTER_WORK) --plates 200000 --steps 16000 --minutes 60 \
	  --boxes 32x128,48x128,64x128 $(STARTER_REAL)
	$(BIN)/python -m engine pretrain --work-dir $(STARTER_WORK)-stage2 --init-from starter --seed 1 --plates 200000 \
	  --steps 26000 --minutes 55 --boxes 32x128,48x128,64x128 $(STARTER_REAL)
	$(BIN)/python -m engine pretrain --work-dir $(STARTER_WORK)-stage3 --init-from starter --seed 2 --plates 200000 \
	  --steps 18000 --minutes 50 $(STARTER_REAL)

clean:
	rm -rf $(VENV) .pytest_cache
