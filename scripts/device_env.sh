# Source me on the GPU machine from the project root, after `bash ../shared/device/prepare.sh`
# here and with `.gpu` carried: pycuda from the wheelhouse, then taskmap installed editable
# (its subpackages live in top-level folders, so a bare PYTHONPATH cannot import them).
source .gpu/setup.sh || return 1
python3 -m pip install -q --no-deps --no-build-isolation -e . >/tmp/taskmap-install.log 2>&1 \
    || { cat /tmp/taskmap-install.log; return 1; }
python3 -c "import taskmap.gpu as g; print('taskmap', __import__('taskmap').__version__, '| gpu:', g.unavailable_reason() or 'ready')"
