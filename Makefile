# The two commands of the README.
.PHONY: demo test bench

demo:
	./setup.sh
	.venv/bin/facetwin demo --profile x2c30 --out out/demo

test:
	./setup.sh --dev
	.venv/bin/python -m pytest -q

bench:
	./setup.sh
	.venv/bin/python bench/twin.py
	.venv/bin/python bench/settle.py
	.venv/bin/python bench/settle_modes.py
	.venv/bin/python bench/emotions.py
	.venv/bin/python bench/bus.py
	.venv/bin/python bench/faults.py
	.venv/bin/python bench/profile_fuzz.py
	.venv/bin/python bench/command_fuzz.py
	.venv/bin/python bench/coexpress.py
	.venv/bin/python bench/identify.py
	.venv/bin/python bench/identify_resume.py
	.venv/bin/python bench/identify_jacobian.py --profiles emo11 x2c30
	.venv/bin/python bench/parallel.py
