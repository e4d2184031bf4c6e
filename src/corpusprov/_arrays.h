/* The buffer of an array.array of one type code, as the native modules take their arrays. */
#ifndef CORPUSPROV_ARRAYS_H
#define CORPUSPROV_ARRAYS_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

/* ``obj``'s buffer in ``view`` (writable when asked) if it holds items of ``format`` and
 * ``itemsize``; else -1 with a TypeError naming ``name`` (and nothing held). */
static int
get_array(PyObject *obj, Py_buffer *view, const char *format, Py_ssize_t itemsize, const char *name, int writable)
{
    int flags = PyBUF_FORMAT | PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0) {
        return -1;
    }
    if (view->itemsize != itemsize || view->format == NULL || strcmp(view->format, format) != 0) {
        PyErr_Format(PyExc_TypeError, "%s: expected array('%s')", name, format);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

#endif
