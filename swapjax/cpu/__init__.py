"""The CPU backend: C++ kernels through jax.ffi, compiling for several CPU devices.

Only CPU runs import this package; the engine receives its functions through
`swapjax.backend` and never imports it by name.
"""
