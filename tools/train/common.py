"""Process setup shared by train.py and export.py (interpreter, threads, allocator)."""
import os
import sys

_ENV = {
    # glibc returns big blocks to the OS after every op by default; on this VM the resulting
    # page faults cost more than the arithmetic. Keep freed memory in the heap instead.
    'MALLOC_MMAP_THRESHOLD_': '4000000000',
    'MALLOC_TRIM_THRESHOLD_': '100000000000',
}


def setup_process(threads):
    """Re-exec under Debian's python3 (python3-torch) and with the allocator settings above."""
    need = {k: v for k, v in _ENV.items() if os.environ.get(k) != v}
    want_threads = str(threads)
    if os.environ.get('OPENBLAS_NUM_THREADS') != want_threads:
        need['OPENBLAS_NUM_THREADS'] = want_threads
    exe = sys.executable
    try:
        import torch  # noqa: F401
    except ImportError:
        if os.path.exists('/usr/bin/python3') and os.path.realpath(exe) != '/usr/bin/python3':
            exe = '/usr/bin/python3'
        else:
            raise
    if need or exe != sys.executable:
        env = dict(os.environ)
        env.update(need)
        env['DSV4_TRAIN_REEXEC'] = '1'
        if os.environ.get('DSV4_TRAIN_REEXEC') == '1' and exe == sys.executable:
            return  # already re-executed once; do not loop
        os.execve(exe, [exe] + sys.argv, env)
    import torch
    torch.set_num_threads(threads)


def threads_arg(argv):
    for i, a in enumerate(argv):
        if a == '--threads' and i + 1 < len(argv):
            return int(argv[i + 1])
        if a.startswith('--threads='):
            return int(a.split('=', 1)[1])
    return 1
