/* Reading aggregate's spill back in sorted order (corpusprov.stages.spill), native twin of
 * its gather_py.
 *
 * The winners' unified lines lie in the spill file in input order; the output wants them in
 * sort-key order, so every line is one random read. In Python that is a pread, a bytes
 * object, two array lookups and a call per line, each pread dropping and retaking the GIL
 * that the output's hashing threads also want: 1.26 s for 386k lines at the end of a
 * 7 s run, where the reads alone cost about 0.15 s. Here a batch of lines is read with the
 * GIL released and comes back as one bytes object.
 *
 *   gather(fd, offsets, lengths, picks, start, max_bytes) -> (data, stop)
 *       picks: array('q'), the ordinals of the lines to read, in output order;
 *       data: the lines picks[start:stop] (line i at offsets[i], lengths[i] bytes) joined,
 *       stop: the first pick not read. Lines are taken until their total reaches max_bytes
 *       (always one at least, while picks remain).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "_arrays.h"

static PyObject *
gather(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "gather(fd, offsets, lengths, picks, start, max_bytes)");
        return NULL;
    }
    long fd_arg = PyLong_AsLong(args[0]);
    Py_ssize_t start = PyLong_AsSsize_t(args[4]);
    Py_ssize_t max_bytes = PyLong_AsSsize_t(args[5]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    if (fd_arg < 0 || fd_arg > INT_MAX) {
        PyErr_SetString(PyExc_ValueError, "fd out of range");
        return NULL;
    }
    int fd = (int)fd_arg;
    Py_buffer offsets_view, lengths_view, picks_view;
    if (get_array(args[1], &offsets_view, "q", 8, "offsets", 0) < 0) {
        return NULL;
    }
    if (get_array(args[2], &lengths_view, "I", 4, "lengths", 0) < 0) {
        PyBuffer_Release(&offsets_view);
        return NULL;
    }
    if (get_array(args[3], &picks_view, "q", 8, "picks", 0) < 0) {
        PyBuffer_Release(&offsets_view);
        PyBuffer_Release(&lengths_view);
        return NULL;
    }
    const int64_t *offsets = offsets_view.buf;
    const uint32_t *lengths = lengths_view.buf;
    const int64_t *picks = picks_view.buf;
    Py_ssize_t lines = offsets_view.len / 8, npicks = picks_view.len / 8;
    PyObject *result = NULL, *data = NULL;
    int64_t *chosen = NULL;
    if (lengths_view.len / 4 != lines) {
        PyErr_SetString(PyExc_ValueError, "offsets and lengths differ in length");
        goto done;
    }
    if (start < 0 || start > npicks) {
        PyErr_SetString(PyExc_IndexError, "start out of range");
        goto done;
    }
    /* The batch: picks[start:stop], checked before anything is read. */
    Py_ssize_t stop = start, total = 0;
    while (stop < npicks && (stop == start || total < max_bytes)) {
        int64_t ordinal = picks[stop];
        if (ordinal < 0 || ordinal >= lines || offsets[ordinal] < 0) {
            PyErr_SetString(PyExc_IndexError, "pick out of range");
            goto done;
        }
        if (total > PY_SSIZE_T_MAX - (Py_ssize_t)lengths[ordinal]) {
            PyErr_NoMemory();
            goto done;
        }
        total += lengths[ordinal];
        stop++;
    }
    /* The reads run without the GIL, from a copy of the batch (the array may change once the
     * GIL is let go). */
    chosen = PyMem_Malloc(sizeof(int64_t) * (size_t)(stop - start + 1));
    if (chosen == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    memcpy(chosen, picks + start, sizeof(int64_t) * (size_t)(stop - start));
    data = PyBytes_FromStringAndSize(NULL, total);
    if (data == NULL) {
        goto done;
    }
    char *out = PyBytes_AS_STRING(data);
    int failure = 0; /* an errno, or -1 for a short read */
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < stop - start && !failure; i++) {
        int64_t pick = chosen[i];
        size_t want = lengths[pick];
        off_t at = (off_t)offsets[pick];
        while (want > 0) {
            ssize_t got = pread(fd, out, want, at);
            if (got < 0) {
                if (errno == EINTR) {
                    continue;
                }
                failure = errno;
                break;
            }
            if (got == 0) {
                failure = -1;
                break;
            }
            out += got;
            at += got;
            want -= (size_t)got;
        }
    }
    Py_END_ALLOW_THREADS
    if (failure > 0) {
        errno = failure;
        PyErr_SetFromErrno(PyExc_OSError);
        goto done;
    }
    if (failure < 0) {
        PyErr_SetString(PyExc_OSError, "the spill file ended before a line it holds");
        goto done;
    }
    result = Py_BuildValue("(On)", data, stop);
done:
    Py_XDECREF(data);
    PyMem_Free(chosen);
    PyBuffer_Release(&offsets_view);
    PyBuffer_Release(&lengths_view);
    PyBuffer_Release(&picks_view);
    return result;
}

static PyMethodDef spillread_methods[] = {
    {"gather", (PyCFunction)(void (*)(void))gather, METH_FASTCALL,
     "gather(fd, offsets, lengths, picks, start, max_bytes) -> (the lines picks[start:stop] joined, stop)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef spillread_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "corpusprov._spillread",
    .m_doc = "Aggregate's spill read back in sorted order (native twin of corpusprov.stages.aggregate.gather_py).",
    .m_size = -1,
    .m_methods = spillread_methods,
};

PyMODINIT_FUNC
PyInit__spillread(void)
{
    return PyModule_Create(&spillread_module);
}
