"""The native modules: the main process's dedup tables (src/corpusprov/_digests.c), the
parser's byte checks and both stages' per-block fast paths (src/corpusprov/_bytescan.c, with
the stages' transcoder in _canonical.h and its float tables in _pow10.h),
aggregate's sorted spill read (src/corpusprov/_spillread.c) and its resolver step,
per-corpus statistics and output order (src/corpusprov/_aggregate.c).

Optional: without a C compiler the install goes on and corpusprov.stages.keys,
corpusprov.io.rowparse, corpusprov.stages.aggregate, merge and summary use their pure-Python
twins (or their Python paths), which give the same answers (slower).
"""

from setuptools import Extension, setup

# -ffp-contract=off: no fused multiply-add, so the native aggregate's `slope * x + intercept`
# rounds as Python's does (GCC fuses by default where the target has FMA, e.g. aarch64).
_FLAGS = ["-O2", "-std=gnu11", "-Wall", "-Wextra", "-Werror=implicit-function-declaration", "-ffp-contract=off"]

setup(
    ext_modules=[
        Extension(
            "corpusprov._digests",
            ["src/corpusprov/_digests.c"],
            optional=True,
            extra_compile_args=_FLAGS,
        ),
        # -O3: the quote count's loop is vectorised.
        Extension(
            "corpusprov._bytescan",
            ["src/corpusprov/_bytescan.c"],
            depends=["src/corpusprov/_blake2b.h", "src/corpusprov/_canonical.h", "src/corpusprov/_pow10.h"],
            optional=True,
            extra_compile_args=["-O3", *_FLAGS[1:]],
        ),
        Extension(
            "corpusprov._spillread",
            ["src/corpusprov/_spillread.c"],
            depends=["src/corpusprov/_arrays.h"],
            optional=True,
            extra_compile_args=_FLAGS,
        ),
        Extension(
            "corpusprov._aggregate",
            ["src/corpusprov/_aggregate.c"],
            depends=["src/corpusprov/_arrays.h"],
            optional=True,
            extra_compile_args=_FLAGS,
        ),
    ]
)
