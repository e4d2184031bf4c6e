/* The aggregate's per-corpus statistics of the rows written (corpusprov.stages.summary), native
 * twin of its group_stats_py.
 *
 * After the read, the winners' unified and native scores lie in slot order with a corpus id
 * each; the summary wants, per corpus, Welford's running count, mean and M2 over its scores in
 * that order, and the scores counted into histogram bins. In Python that is a comparison, a
 * compress, a bisect and four float operations a score, ~0.3 s for 386k winners at the end of
 * a 5 s run, all of it after the workers have finished.
 *
 *   group_stats(values, groups, group, count, mean, m2, edges)
 *       -> (selected, count, mean, m2, bins)
 *       values: array('d'); groups: array('i') of the same length; the values whose group is
 *       ``group`` are fed, in order, to the running (count, mean, m2) (the same operations in
 *       the same order as summary.Running, so the same bits) and counted into len(edges) + 1
 *       bins: 0 below edges[0], len(edges) above edges[-1], else 1 + the bin (bisect_right),
 *       a value equal to the top edge in the last bin.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

static int
get_buffer(PyObject *obj, Py_buffer *view, const char *format, Py_ssize_t itemsize, const char *name)
{
    if (PyObject_GetBuffer(obj, view, PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) < 0) {
        return -1;
    }
    if (view->itemsize != itemsize || view->format == NULL || strcmp(view->format, format) != 0) {
        PyErr_Format(PyExc_TypeError, "%s: expected array('%s')", name, format);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* bisect.bisect_right(edges, value), as Python's loop runs it (NaN goes past the end). */
static Py_ssize_t
bisect_right(const double *edges, Py_ssize_t size, double value)
{
    Py_ssize_t low = 0, high = size;
    while (low < high) {
        Py_ssize_t middle = (low + high) / 2;
        if (value < edges[middle]) {
            high = middle;
        } else {
            low = middle + 1;
        }
    }
    return low;
}

static PyObject *
group_stats(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "group_stats(values, groups, group, count, mean, m2, edges)");
        return NULL;
    }
    long group = PyLong_AsLong(args[2]);
    long long count = PyLong_AsLongLong(args[3]);
    double mean = PyFloat_AsDouble(args[4]);
    double m2 = PyFloat_AsDouble(args[5]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    PyObject *edge_items = PySequence_Fast(args[6], "edges: expected a sequence of floats");
    if (edge_items == NULL) {
        return NULL;
    }
    Py_ssize_t edge_count = PySequence_Fast_GET_SIZE(edge_items);
    if (edge_count < 1) {
        Py_DECREF(edge_items);
        PyErr_SetString(PyExc_ValueError, "edges: one at least");
        return NULL;
    }
    double *edges = PyMem_Malloc(sizeof(double) * (size_t)edge_count);
    Py_ssize_t *bins = PyMem_Calloc((size_t)edge_count + 1, sizeof(Py_ssize_t));
    if (edges == NULL || bins == NULL) {
        PyMem_Free(edges);
        PyMem_Free(bins);
        Py_DECREF(edge_items);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < edge_count; i++) {
        edges[i] = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(edge_items, i));
    }
    Py_DECREF(edge_items);
    PyObject *result = NULL;
    Py_buffer values, groups;
    if (PyErr_Occurred() || get_buffer(args[0], &values, "d", sizeof(double), "values") < 0) {
        goto free;
    }
    if (get_buffer(args[1], &groups, "i", sizeof(int), "groups") < 0) {
        PyBuffer_Release(&values);
        goto free;
    }
    Py_ssize_t size = values.len / (Py_ssize_t)sizeof(double);
    if (groups.len / (Py_ssize_t)sizeof(int) != size) {
        PyErr_SetString(PyExc_ValueError, "values and groups differ in length");
        goto release;
    }
    const double *value_at = values.buf;
    const int *group_at = groups.buf;
    Py_ssize_t selected = 0;
    double top = edges[edge_count - 1];
    for (Py_ssize_t i = 0; i < size; i++) {
        if (group_at[i] != group) {
            continue;
        }
        double value = value_at[i];
        selected++;
        count++;
        double delta = value - mean;
        mean += delta / (double)count;
        m2 += delta * (value - mean);
        Py_ssize_t bin = value == top ? edge_count - 1 : bisect_right(edges, edge_count, value);
        bins[bin]++;
    }
    PyObject *bin_list = PyList_New(edge_count + 1);
    if (bin_list == NULL) {
        goto release;
    }
    for (Py_ssize_t i = 0; i <= edge_count; i++) {
        PyObject *number = PyLong_FromSsize_t(bins[i]);
        if (number == NULL) {
            Py_DECREF(bin_list);
            goto release;
        }
        PyList_SET_ITEM(bin_list, i, number);
    }
    result = Py_BuildValue("(nLddN)", selected, count, mean, m2, bin_list);
release:
    PyBuffer_Release(&values);
    PyBuffer_Release(&groups);
free:
    PyMem_Free(edges);
    PyMem_Free(bins);
    return result;
}

static PyMethodDef aggregate_methods[] = {
    {"group_stats", (PyCFunction)(void (*)(void))group_stats, METH_FASTCALL,
     "group_stats(values, groups, group, count, mean, m2, edges) -> (selected, count, mean, m2, bins)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef aggregate_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "corpusprov._aggregate",
    .m_doc = "The aggregate's per-corpus statistics (native twin of corpusprov.stages.summary.group_stats_py).",
    .m_size = -1,
    .m_methods = aggregate_methods,
};

PyMODINIT_FUNC
PyInit__aggregate(void)
{
    return PyModule_Create(&aggregate_module);
}
