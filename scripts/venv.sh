# Sourced by run.sh and test.sh: a project-local virtualenv, reinstalled when requirements change.
ensure_venv() {
    local requirements="$1" stamp=".venv/.installed-$(basename "$1")"
    if [ ! -x .venv/bin/python ]; then
        python3 -m venv .venv
    fi
    if [ ! -f "$stamp" ] || [ -n "$(find requirements*.txt constraints.txt -newer "$stamp" 2>/dev/null)" ]; then
        .venv/bin/python -m pip install --quiet "pip==26.3"
        .venv/bin/python -m pip install --quiet -r "$requirements" -c constraints.txt
        touch "$stamp"
    fi
}
