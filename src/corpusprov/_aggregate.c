/* The aggregate's resolver step, its per-corpus statistics and its output order, native twins
 * of corpusprov.stages.resolver's Resolver.offer_block_py (see offer_block below), of
 * corpusprov.stages.summary's group_stats_py and of corpusprov.stages.spill's
 * sorted_ordinals_py (see sorted_ordinals below).
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
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "_arrays.h"

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
    if (PyErr_Occurred() || get_array(args[0], &values, "d", sizeof(double), "values", 0) < 0) {
        goto free;
    }
    if (get_array(args[1], &groups, "i", sizeof(int), "groups", 0) < 0) {
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

/* ---- offer_block: the resolver's rule over a block of offered rows ----
 *
 * resolver.Resolver.offer_block_py, natively: the same state (the key index dict, the
 * corpus-id dict, the winner arrays and the sort-key list), changed the same way, row by row
 * in input order. First the rows are checked, then each new key gets its slot (in the order of
 * first occurrence, as the Python appends give them), the arrays grow once, and the rows are
 * decided in order.
 *
 *   offer_block(index, corpus_ids, winner, std, corpus, unified, native, dropped, sort, rows,
 *               ordinal) -> (same_corpus, lost, displaced)
 */

typedef struct {
    PyObject *owner;
    Py_buffer view;
    int held;
} ArrayView;

static int
grow_array(PyObject *array, Py_ssize_t items, Py_ssize_t itemsize)
{
    if (items == 0) {
        return 0;
    }
    PyObject *zeros = PyBytes_FromStringAndSize(NULL, items * itemsize);
    if (zeros == NULL) {
        return -1;
    }
    memset(PyBytes_AS_STRING(zeros), 0, (size_t)(items * itemsize));
    PyObject *done = PyObject_CallMethod(array, "frombytes", "O", zeros);
    Py_DECREF(zeros);
    if (done == NULL) {
        return -1;
    }
    Py_DECREF(done);
    return 0;
}

static PyObject *
offer_block(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 11) {
        PyErr_SetString(PyExc_TypeError,
                        "offer_block(index, corpus_ids, winner, std, corpus, unified, native, dropped, sort, rows, ordinal)");
        return NULL;
    }
    PyObject *index = args[0], *corpus_ids = args[1], *sort = args[8], *rows = args[9];
    long long ordinal = PyLong_AsLongLong(args[10]);
    if (ordinal == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (!PyDict_CheckExact(index) || !PyDict_CheckExact(corpus_ids) || !PyList_CheckExact(sort)
        || !PyList_CheckExact(rows)) {
        PyErr_SetString(PyExc_TypeError, "index and corpus_ids must be dicts, sort and rows lists");
        return NULL;
    }
    static const char *formats[6] = {"q", "d", "i", "d", "d", "b"};
    static const Py_ssize_t sizes[6] = {8, 8, 4, 8, 8, 1};
    Py_ssize_t count = PyList_GET_SIZE(rows);
    /* The rows first: a bad one changes nothing. */
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *row = PyList_GET_ITEM(rows, i);
        if (!PyTuple_Check(row) || PyTuple_GET_SIZE(row) != 7 || !PyBytes_Check(PyTuple_GET_ITEM(row, 0))
            || !PyUnicode_Check(PyTuple_GET_ITEM(row, 1)) || !PyFloat_Check(PyTuple_GET_ITEM(row, 2))
            || !PyFloat_Check(PyTuple_GET_ITEM(row, 4)) || !PyFloat_Check(PyTuple_GET_ITEM(row, 5))) {
            PyErr_SetString(PyExc_TypeError, "rows: (digest, label, std, sort_key, unified, native, dropped) tuples");
            return NULL;
        }
    }
    ArrayView arrays[6];
    for (int k = 0; k < 6; k++) {
        arrays[k].owner = args[2 + k];
        arrays[k].held = 0;
    }
    Py_ssize_t old_size = PyList_GET_SIZE(sort);
    Py_ssize_t *slots = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(count ? count : 1));
    char *created = PyMem_Malloc((size_t)(count ? count : 1));
    PyObject *displaced = PyList_New(0);
    PyObject *result = NULL;
    if (slots == NULL || created == NULL || displaced == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    /* Slots: an existing key's, or the next new one's (index.setdefault in row order). */
    Py_ssize_t fresh = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *candidate = PyLong_FromSsize_t(old_size + fresh);
        if (candidate == NULL) {
            goto done;
        }
        PyObject *held = PyDict_SetDefault(index, PyTuple_GET_ITEM(PyList_GET_ITEM(rows, i), 0), candidate);
        Py_DECREF(candidate);
        if (held == NULL) {
            goto done;
        }
        Py_ssize_t slot = PyLong_AsSsize_t(held);
        if (slot == -1 && PyErr_Occurred()) {
            goto done;
        }
        slots[i] = slot;
        created[i] = slot == old_size + fresh;
        fresh += created[i];
    }
    for (int k = 0; k < 6; k++) {
        if (grow_array(arrays[k].owner, fresh, sizes[k]) < 0) {
            goto done;
        }
    }
    for (Py_ssize_t i = 0; i < fresh; i++) {
        if (PyList_Append(sort, Py_None) < 0) {
            goto done;
        }
    }
    static const char *names[6] = {"winner", "std", "corpus", "unified", "native", "dropped"};
    for (int k = 0; k < 6; k++) {
        if (get_array(arrays[k].owner, &arrays[k].view, formats[k], sizes[k], names[k], 1) < 0) {
            goto done;
        }
        arrays[k].held = 1;
        if (arrays[k].view.len / sizes[k] != old_size + fresh) {
            PyErr_SetString(PyExc_TypeError, "winner arrays: one slot a key, as many as the sort keys");
            goto done;
        }
    }
    long long *winner = arrays[0].view.buf;
    double *std_of = arrays[1].view.buf;
    int *corpus_of = arrays[2].view.buf;
    double *unified_of = arrays[3].view.buf;
    double *native_of = arrays[4].view.buf;
    signed char *dropped_of = arrays[5].view.buf;
    Py_ssize_t same = 0, lost = 0;
    for (Py_ssize_t i = 0; i < count; i++, ordinal++) {
        PyObject *row = PyList_GET_ITEM(rows, i);
        PyObject *label = PyTuple_GET_ITEM(row, 1);
        PyObject *known = PyDict_GetItemWithError(corpus_ids, label);
        long corpus;
        if (known == NULL) {
            if (PyErr_Occurred()) {
                goto done;
            }
            corpus = (long)PyDict_GET_SIZE(corpus_ids);
            PyObject *number = PyLong_FromLong(corpus);
            if (number == NULL || PyDict_SetItem(corpus_ids, label, number) < 0) {
                Py_XDECREF(number);
                goto done;
            }
            Py_DECREF(number);
        } else {
            corpus = PyLong_AsLong(known);
        }
        Py_ssize_t slot = slots[i];
        double std = PyFloat_AS_DOUBLE(PyTuple_GET_ITEM(row, 2));
        int replace = created[i];
        if (!replace) {
            if (corpus_of[slot] == corpus) {
                same++;
                continue;
            }
            if (!(std < std_of[slot])) {
                lost++;
                continue;
            }
            PyObject *rival = PyLong_FromLongLong(winner[slot]);
            if (rival == NULL || PyList_Append(displaced, rival) < 0) {
                Py_XDECREF(rival);
                goto done;
            }
            Py_DECREF(rival);
        }
        int dropped = PyObject_IsTrue(PyTuple_GET_ITEM(row, 6));
        if (dropped < 0) {
            goto done;
        }
        winner[slot] = ordinal;
        std_of[slot] = std;
        corpus_of[slot] = (int)corpus;
        unified_of[slot] = PyFloat_AS_DOUBLE(PyTuple_GET_ITEM(row, 4));
        native_of[slot] = PyFloat_AS_DOUBLE(PyTuple_GET_ITEM(row, 5));
        dropped_of[slot] = (signed char)dropped;
        PyObject *key = PyTuple_GET_ITEM(row, 3);
        Py_INCREF(key);
        if (PyList_SetItem(sort, slot, key) < 0) {
            goto done;
        }
    }
    result = Py_BuildValue("(nnO)", same, lost, displaced);
done:
    for (int k = 0; k < 6; k++) {
        if (arrays[k].held) {
            PyBuffer_Release(&arrays[k].view);
        }
    }
    PyMem_Free(slots);
    PyMem_Free(created);
    Py_XDECREF(displaced);
    return result;
}

/* ---- sorted_ordinals: the winners in output order ----
 *
 * aggregate._write_sorted's order, natively (its twin is sorted_ordinals_py): the ordinals
 * sorted as the entries sort_key + b"\0" + ordinal.to_bytes(8, "big") sort as bytes. In
 * Python that is a bytes object a winner and a list sort, ~0.3 s for 386k winners, all of it
 * after the read; here an array of (key, ordinal) pairs, a radix sort on the entries' first
 * sixteen bytes and a merge sort of what those leave tied, with the GIL released.
 *
 *   sorted_ordinals(sort_keys, ordinals) -> bytes
 *       sort_keys: a list of bytes; ordinals: array('q') of the same length, each >= 0;
 *       the ordinals in that order, as int64 in native byte order (array('q').frombytes).
 */

typedef struct {
    const unsigned char *key;
    Py_ssize_t size;
    uint64_t ordinal;
    uint64_t head, next; /* the entry's first sixteen bytes, big-endian */
} SortEntry;

/* Byte ``i`` of the entry key + b"\0" + ordinal (8 bytes, big-endian); i < size + 9. */
static inline unsigned
entry_byte(const SortEntry *e, Py_ssize_t i)
{
    if (i < e->size) {
        return e->key[i];
    }
    if (i == e->size) {
        return 0;
    }
    return (unsigned)(e->ordinal >> (8 * (7 - (i - e->size - 1)))) & 0xffu;
}

static int
entry_compare(const void *x, const void *y)
{
    const SortEntry *a = x, *b = y;
    if (a->head != b->head) {
        return a->head < b->head ? -1 : 1;
    }
    if (a->next != b->next) {
        return a->next < b->next ? -1 : 1;
    }
    Py_ssize_t common = a->size < b->size ? a->size : b->size;
    int order = memcmp(a->key, b->key, (size_t)common);
    if (order != 0) {
        return order;
    }
    if (a->size == b->size) {
        return (a->ordinal > b->ordinal) - (a->ordinal < b->ordinal);
    }
    /* One key is a prefix of the other: compare the entries byte by byte from there. */
    Py_ssize_t a_total = a->size + 9, b_total = b->size + 9;
    for (Py_ssize_t i = common; i < a_total && i < b_total; i++) {
        unsigned p = entry_byte(a, i), q = entry_byte(b, i);
        if (p != q) {
            return p < q ? -1 : 1;
        }
    }
    return (a_total > b_total) - (a_total < b_total);
}

typedef struct {
    uint64_t head, next;
    Py_ssize_t index; /* into the entries */
} RadixItem;

static inline int
item_compare(const SortEntry *entries, const RadixItem *a, const RadixItem *b)
{
    return entry_compare(&entries[a->index], &entries[b->index]);
}

/* items[0:count] sorted by entry_compare: insertion sort for a few, else a merge sort through
 * ``spare`` (as many items). */
static void
sort_run(const SortEntry *entries, RadixItem *items, RadixItem *spare, Py_ssize_t count)
{
    if (count <= 24) {
        for (Py_ssize_t i = 1; i < count; i++) {
            RadixItem moving = items[i];
            Py_ssize_t j = i;
            while (j > 0 && item_compare(entries, &items[j - 1], &moving) > 0) {
                items[j] = items[j - 1];
                j--;
            }
            items[j] = moving;
        }
        return;
    }
    Py_ssize_t half = count / 2;
    sort_run(entries, items, spare, half);
    sort_run(entries, items + half, spare + half, count - half);
    Py_ssize_t i = 0, j = half, k = 0;
    while (i < half && j < count) {
        spare[k++] = item_compare(entries, &items[j], &items[i]) < 0 ? items[j++] : items[i++];
    }
    while (i < half) {
        spare[k++] = items[i++];
    }
    while (j < count) {
        spare[k++] = items[j++];
    }
    memcpy(items, spare, sizeof(RadixItem) * (size_t)count);
}

/* The entries' ordinals in entry order, at ``out``: a least-significant-digit radix sort on
 * the first sixteen bytes (sixteen bits a pass, a pass skipped where every item has the same
 * digit, as the bytes of a shared corpus label do), then each run of equal first sixteen
 * bytes sorted by entry_compare. 0, or -1 out of memory. No Python objects touched. */
static int
sort_entries(const SortEntry *entries, Py_ssize_t count, int64_t *out)
{
    size_t slots = (size_t)(count > 0 ? count : 1);
    RadixItem *items = malloc(sizeof(RadixItem) * slots);
    RadixItem *spare = malloc(sizeof(RadixItem) * slots);
    size_t *counts = malloc(sizeof(size_t) * 65536);
    if (items == NULL || spare == NULL || counts == NULL) {
        free(items);
        free(spare);
        free(counts);
        return -1;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        items[i].head = entries[i].head;
        items[i].next = entries[i].next;
        items[i].index = i;
    }
    for (int pass = 0; pass < 8; pass++) {
        int shift = 16 * (pass % 4);
        int in_head = pass >= 4;
        memset(counts, 0, sizeof(size_t) * 65536);
        for (Py_ssize_t i = 0; i < count; i++) {
            counts[((in_head ? items[i].head : items[i].next) >> shift) & 0xffff]++;
        }
        if (count > 0 && counts[((in_head ? items[0].head : items[0].next) >> shift) & 0xffff] == (size_t)count) {
            continue; /* one digit for all: the order stands */
        }
        size_t total = 0;
        for (size_t digit = 0; digit < 65536; digit++) {
            size_t here = counts[digit];
            counts[digit] = total;
            total += here;
        }
        for (Py_ssize_t i = 0; i < count; i++) {
            spare[counts[((in_head ? items[i].head : items[i].next) >> shift) & 0xffff]++] = items[i];
        }
        RadixItem *swap = items;
        items = spare;
        spare = swap;
    }
    for (Py_ssize_t start = 0; start < count;) {
        Py_ssize_t stop = start + 1;
        while (stop < count && items[stop].head == items[start].head && items[stop].next == items[start].next) {
            stop++;
        }
        if (stop - start > 1) {
            sort_run(entries, items + start, spare + start, stop - start);
        }
        start = stop;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        out[i] = (int64_t)entries[items[i].index].ordinal;
    }
    free(items);
    free(spare);
    free(counts);
    return 0;
}

static PyObject *
sorted_ordinals(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "sorted_ordinals(sort_keys, ordinals)");
        return NULL;
    }
    PyObject *keys = args[0];
    if (!PyList_Check(keys)) {
        PyErr_SetString(PyExc_TypeError, "sort_keys: expected a list of bytes");
        return NULL;
    }
    Py_buffer view;
    if (get_array(args[1], &view, "q", 8, "ordinals", 0) < 0) {
        return NULL;
    }
    Py_ssize_t count = PyList_GET_SIZE(keys);
    const int64_t *ordinals = view.buf;
    PyObject *result = NULL;
    SortEntry *entries = NULL;
    if (view.len / 8 != count) {
        PyErr_SetString(PyExc_ValueError, "sort_keys and ordinals differ in length");
        goto done;
    }
    entries = PyMem_RawMalloc(sizeof(SortEntry) * (size_t)(count > 0 ? count : 1));
    if (entries == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *key = PyList_GET_ITEM(keys, i);
        if (!PyBytes_CheckExact(key) || ordinals[i] < 0) {
            PyErr_SetString(PyExc_TypeError, "sort_keys: bytes each; ordinals: >= 0 each");
            goto done;
        }
        SortEntry *e = &entries[i];
        e->key = (const unsigned char *)PyBytes_AS_STRING(key);
        e->size = PyBytes_GET_SIZE(key);
        e->ordinal = (uint64_t)ordinals[i];
        e->head = e->next = 0;
        if (e->size >= 16) {
            unsigned char first[16];
            memcpy(first, e->key, 16);
            for (int k = 0; k < 8; k++) {
                e->head = (e->head << 8) | first[k];
                e->next = (e->next << 8) | first[8 + k];
            }
        } else {
            for (Py_ssize_t k = 0; k < 16 && k < e->size + 9; k++) {
                uint64_t *word = k < 8 ? &e->head : &e->next;
                *word = (*word << 8) | entry_byte(e, k);
            }
            if (e->size + 9 < 16) {
                e->next <<= 8 * (16 - (e->size + 9)); /* a short entry: zeros after its end */
            }
        }
    }
    result = PyBytes_FromStringAndSize(NULL, count * 8);
    if (result == NULL) {
        goto done;
    }
    int64_t *out = (int64_t *)PyBytes_AS_STRING(result);
    int sorted;
    /* The list and its bytes stay as they are while this call holds them (the caller's own). */
    Py_BEGIN_ALLOW_THREADS
    sorted = sort_entries(entries, count, out);
    Py_END_ALLOW_THREADS
    if (sorted < 0) {
        Py_CLEAR(result);
        PyErr_NoMemory();
    }
done:
    PyMem_RawFree(entries);
    PyBuffer_Release(&view);
    return result;
}

static PyMethodDef aggregate_methods[] = {
    {"group_stats", (PyCFunction)(void (*)(void))group_stats, METH_FASTCALL,
     "group_stats(values, groups, group, count, mean, m2, edges) -> (selected, count, mean, m2, bins)."},
    {"offer_block", (PyCFunction)(void (*)(void))offer_block, METH_FASTCALL,
     "offer_block(index, corpus_ids, winner, std, corpus, unified, native, dropped, sort, rows, ordinal)"
     " -> (same_corpus, lost, displaced)."},
    {"sorted_ordinals", (PyCFunction)(void (*)(void))sorted_ordinals, METH_FASTCALL,
     "sorted_ordinals(sort_keys, ordinals) -> the ordinals in sort-entry order, as int64 bytes."},
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
