"""The one native module: compact digest tables for the main process's dedup (see src/corpusprov/_digests.c).

Optional: without a C compiler the install goes on and corpusprov.stages.keys uses its
pure-Python tables, which behave the same (slower per row, same memory).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "corpusprov._digests",
            ["src/corpusprov/_digests.c"],
            optional=True,
            extra_compile_args=["-O2", "-std=c11", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"],
        )
    ]
)
