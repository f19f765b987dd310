@echo off
rem Create a virtual environment and install a requirements file into it, skipping the
rem install when the file is unchanged since the last one (same stamp as setup-python.sh and
rem the orchestrator's supervisor). Usage: setup-python.bat [VENV_DIR] [REQUIREMENTS_FILE]
rem Defaults prepare the engine: engine\.venv from requirements.txt.
setlocal EnableDelayedExpansion
cd /d "%~dp0"
set "VENV=%~1"
if "%VENV%"=="" set "VENV=engine\.venv"
set "REQS=%~2"
if "%REQS%"=="" set "REQS=requirements.txt"
set "CHECK=import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)"

if not exist "%VENV%\Scripts\python.exe" (
  set "PY="
  if defined LORAMINT_PYTHON "%LORAMINT_PYTHON%" -c "%CHECK%" >nul 2>&1 && set "PY=%LORAMINT_PYTHON%"
  if not defined PY py -3 -c "%CHECK%" >nul 2>&1 && set "PY=py -3"
  if not defined PY python -c "%CHECK%" >nul 2>&1 && set "PY=python"
  if not defined PY (
    echo LoraMint needs Python 3.10 or newer; install it or set LORAMINT_PYTHON 1>&2
    exit /b 1
  )
  echo creating virtual environment %VENV% with !PY!
  !PY! -m venv "%VENV%" || exit /b 1
)

set "VPY=%VENV%\Scripts\python.exe"
for /f "delims=" %%H in ('"%VPY%" -c "import hashlib,pathlib,sys; p=pathlib.Path(sys.argv[1]); t=p.read_bytes(); x=[p.parent/l[3:].strip() for l in t.decode().splitlines() if l.startswith('-r ')]; print(hashlib.sha256(t+b''.join(q.read_bytes() for q in x)).hexdigest())" "%REQS%"') do set "HASH=%%H"
set "STAMP=%VENV%\.requirements.sha256"
set "OLD="
if exist "%STAMP%" set /p OLD=<"%STAMP%"
if "%OLD%"=="%HASH%" (
  echo %REQS% unchanged since the last install into %VENV%; skipping
  exit /b 0
)
echo installing %REQS% into %VENV%
rem torch's CUDA build when nvidia-smi answers: PyPI's torch is CPU-only on Windows.
set "TORCH_INDEX=%LORAMINT_ENGINE__TORCHINDEX%"
if "%TORCH_INDEX%"=="" set "TORCH_INDEX=auto"
"%VPY%" orchestrator\torch_wheels.py "%REQS%" --index "%TORCH_INDEX%" || exit /b 1
"%VPY%" -m pip install --disable-pip-version-check -q -r "%REQS%" || exit /b 1
> "%STAMP%" echo %HASH%
