# ctest `train_smoke` (label `train`): the training code's smoke test, so tools/train cannot rot.
#   cmake -DPYTHON=<python3> -DTOOLS=<tools/train> -DOUT=<dir> -P smoke_step.cmake
# Builds the real data pipeline into <dir>/data (corpus.py: the KJV split; bpe.py: the 6144-id
# tokenizer and the encoded splits, train.txt's first MB only; ~8 s), then runs
# `train.py --smoke --data <dir>/data --out <dir>/run` (a few steps of a small config on a slice;
# train.py exits non-zero unless the loss decreases). PyTorch comes from Debian's python3-torch,
# which only Debian's own /usr/bin/python3 sees: tests/CMakeLists.txt prefers that interpreter
# (override: -DDSV4_TRAIN_PYTHON=...). A missing torch, numpy or bible is a failure that says
# what to install.
cmake_minimum_required(VERSION 3.25)

execute_process(COMMAND "${PYTHON}" -c "import torch, numpy"
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR
    "train_smoke needs python3 with PyTorch and numpy, and '${PYTHON}' cannot import them:\n"
    "${err}\nRun scripts/install-deps.sh (Debian python3-torch python3-numpy bible-kjv), or "
    "configure with -DDSV4_TRAIN_PYTHON=<a python3 that has torch>.")
endif()
find_program(BIBLE bible)
if(NOT BIBLE)
  message(FATAL_ERROR "train_smoke builds its corpus with 'bible' (Debian bible-kjv): run "
                      "scripts/install-deps.sh")
endif()

function(step)
  execute_process(COMMAND ${ARGV} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "train_smoke: command failed (exit ${rc}): ${ARGV}")
  endif()
endfunction()

# The scripts run from the source tree: keep it free of __pycache__ folders.
set(ENV{PYTHONDONTWRITEBYTECODE} 1)
file(REMOVE_RECURSE "${OUT}")
set(data "${OUT}/data")
step("${PYTHON}" "${TOOLS}/corpus.py" --out "${data}")
step("${PYTHON}" "${TOOLS}/bpe.py" train --text "${data}/train.txt" --vocab 6144
     --out "${OUT}/tokenizer.json")
# train.py --smoke reads the first 200,000 training tokens (~860 KB): encode 1 MB of train.txt.
step("${PYTHON}" "${TOOLS}/bpe.py" encode --tokenizer "${OUT}/tokenizer.json"
     --text "${data}/train.txt" --max-bytes 1000000 --out "${data}/train.ids.npy")
step("${PYTHON}" "${TOOLS}/bpe.py" encode --tokenizer "${OUT}/tokenizer.json"
     --text "${data}/heldout.txt" --out "${data}/heldout.ids.npy")
step("${PYTHON}" "${TOOLS}/train.py" --smoke --data "${data}" --out "${OUT}/run")
