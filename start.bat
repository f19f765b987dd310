@echo off
rem Start LoraMint on Windows: prepare the orchestrator's venv, then run it. The orchestrator
rem creates the engine's venv, installs requirements.txt when it changed, and supervises it.
setlocal
cd /d "%~dp0"
call setup-python.bat orchestrator\.venv orchestrator\requirements.txt || exit /b 1
orchestrator\.venv\Scripts\python.exe -m orchestrator
