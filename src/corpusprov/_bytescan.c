/* Byte checks of the parser's fast path (corpusprov.io.rowparse), native twins of its
 * long_integer_py, quote_count_py and substitute_non_finite_py.
 *
 * The pure-Python functions in rowparse.py are the reference; these give the same answers
 * (property-tested against them) for less: on real-shaped 2 KB rows the Python checks cost
 * about 2.7 us (the big-integer fold and search), 1.2 us (each quote count) and 5.4 us (the
 * NaN swap, for a third of the rows) a row.
 *
 *   quote_count(data)         data.count(b'"'), in a loop the compiler vectorises
 *   long_integer(raw)         _LONG_INTEGER in raw.translate(_FOLD): 19+ digits right after
 *                             white space, ':', ',', '[' or '-'
 *   substitute_non_finite(raw, mark)
 *                             rowparse.substitute_non_finite_py(raw, mark)
 *
 * And one walk over a parsed row, for the stages' counters (corpusprov.stages.rowpolicy):
 *
 *   non_finite_count(row)     rowpolicy.non_finite_count_py(row): the NaN and infinite floats
 *                             at any depth of dicts and lists (5.8 us a real-shaped row in
 *                             Python, for the third of the rows that hold one)
 *
 * And each stage's block of rows in one call (see merge_rows, aggregate_rows below):
 *
 *   merge_rows(lines, context)
 *   aggregate_rows(lines, context, override)
 *                             (answered, rows, lines, lengths, kept): for the lines it answers
 *                             (one byte a line, 1 where it did), what the Python path gives a
 *                             usable row (its result tuple and output line, the lines joined);
 *                             the rest are that path's
 *
 * And the transcoder's two parts on their own, for the tests (see _canonical.h):
 *
 *   canonical(raw)            a raw line's canonical line, or None where it refuses
 *   format_float(x)           a finite float as orjson writes it
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "_blake2b.h"
#include "_canonical.h"

static int
bytes_arg(PyObject *arg, const unsigned char **data, Py_ssize_t *size)
{
    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "expected bytes");
        return -1;
    }
    *data = (const unsigned char *)PyBytes_AS_STRING(arg);
    *size = PyBytes_GET_SIZE(arg);
    return 0;
}

static Py_ssize_t
count_quotes(const unsigned char *data, Py_ssize_t size)
{
    Py_ssize_t total = 0;
    Py_ssize_t at = 0;
    /* Blocks of at most 255 bytes count into a byte-wide sum, which vectorises well. */
    while (at < size) {
        Py_ssize_t stop = size - at > 255 ? at + 255 : size;
        unsigned char part = 0;
        for (Py_ssize_t i = at; i < stop; i++) {
            part += data[i] == '"';
        }
        total += part;
        at = stop;
    }
    return total;
}

static PyObject *
quote_count(PyObject *Py_UNUSED(module), PyObject *arg)
{
    const unsigned char *data;
    Py_ssize_t size;
    if (bytes_arg(arg, &data, &size) < 0) {
        return NULL;
    }
    return PyLong_FromSsize_t(count_quotes(data, size));
}

/* The bytes rowparse._FOLD maps to " " (white space and what may stand before an integer). */
static int
before_integer(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ':' || c == ',' || c == '[' || c == '-';
}

#define LONG_DIGITS 19

static int
is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int
has_long_integer(const unsigned char *data, Py_ssize_t size)
{
    /* A match is a maximal run of 19+ digits whose byte before folds to " ". Every such run
     * holds one of the probed bytes (19 apart), so only runs through a probe are measured:
     * a byte-by-byte scan costs ~3 ns a byte on float-heavy rows (a mispredicted branch at
     * every digit/non-digit change), the probes a fraction of that. */
    for (Py_ssize_t probe = LONG_DIGITS - 1; probe < size; probe += LONG_DIGITS) {
        if (!is_digit(data[probe])) {
            continue;
        }
        Py_ssize_t start = probe;
        while (start > 0 && is_digit(data[start - 1])) {
            start--;
        }
        Py_ssize_t end = probe + 1;
        while (end < size && is_digit(data[end])) {
            end++;
        }
        if (end - start >= LONG_DIGITS && start > 0 && before_integer(data[start - 1])) {
            return 1;
        }
        /* data[end] is no digit: a next run of 19 starts after it, so it holds end + 19. */
        probe = end;
    }
    return 0;
}

static PyObject *
long_integer(PyObject *Py_UNUSED(module), PyObject *arg)
{
    const unsigned char *data;
    Py_ssize_t size;
    if (bytes_arg(arg, &data, &size) < 0) {
        return NULL;
    }
    return PyBool_FromLong(has_long_integer(data, size));
}

/* raw[index] with Python's negative indexing (callers stay within -size .. size-1). */
static unsigned char
at(const unsigned char *raw, Py_ssize_t size, Py_ssize_t index)
{
    return raw[index < 0 ? index + size : index];
}

/* Python's slice bound normalisation for raw[start:stop] / rfind's end. */
static Py_ssize_t
bound(Py_ssize_t index, Py_ssize_t size)
{
    if (index < 0) {
        index += size;
        if (index < 0) {
            index = 0;
        }
    }
    return index > size ? size : index;
}

static Py_ssize_t
find(const unsigned char *raw, Py_ssize_t size, const char *token, Py_ssize_t length, Py_ssize_t from)
{
    if (from > size - length) {
        return -1;
    }
    const unsigned char *hit = memmem(raw + from, (size_t)(size - from), token, (size_t)length);
    return hit == NULL ? -1 : hit - raw;
}

typedef struct {
    Py_ssize_t start;
    Py_ssize_t end;
    double value;
    Py_ssize_t key_start;
    Py_ssize_t key_stop;
} Found;

static int
by_start(const void *left, const void *right)
{
    Py_ssize_t a = ((const Found *)left)->start;
    Py_ssize_t b = ((const Found *)right)->start;
    return (a > b) - (a < b);
}

static PyObject *
substitute_non_finite(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    const unsigned char *raw;
    const unsigned char *mark;
    Py_ssize_t size;
    Py_ssize_t mark_size;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "expected (raw, mark)");
        return NULL;
    }
    if (bytes_arg(args[0], &raw, &size) < 0 || bytes_arg(args[1], &mark, &mark_size) < 0) {
        return NULL;
    }
    if (find(raw, size, (const char *)mark, mark_size, 0) != -1 || (size > 1 && memchr(raw + 1, '{', size - 1))) {
        Py_RETURN_NONE;
    }
    Found stack_found[16];
    Found *found = stack_found;
    Py_ssize_t count = 0;
    Py_ssize_t capacity = 16;
    static const char *tokens[2] = {"NaN", "Infinity"};
    static const Py_ssize_t lengths[2] = {3, 8};
    PyObject *result = NULL;
    for (int kind = 0; kind < 2; kind++) {
        double value = kind == 0 ? Py_NAN : Py_HUGE_VAL;
        Py_ssize_t hit = find(raw, size, tokens[kind], lengths[kind], 0);
        while (hit != -1) {
            Py_ssize_t end = hit + lengths[kind];
            Py_ssize_t start = (kind == 1 && at(raw, size, hit - 1) == '-') ? hit - 1 : hit;
            Py_ssize_t colon = at(raw, size, start - 1) == ':' ? start - 1 : start - 2;
            if (at(raw, size, colon) == ':' && at(raw, size, colon - 1) == '"'
                && (colon == start - 1 || at(raw, size, start - 1) == ' ')) {
                /* key = raw[raw.rfind(b'"', 0, colon - 1) + 1 : colon - 1] */
                Py_ssize_t stop = bound(colon - 1, size);
                Py_ssize_t quote = -1;
                for (Py_ssize_t i = stop - 1; i >= 0; i--) {
                    if (raw[i] == '"') {
                        quote = i;
                        break;
                    }
                }
                if (count == capacity) {
                    Found *grown = PyMem_Malloc(sizeof(Found) * (size_t)capacity * 2);
                    if (grown == NULL) {
                        PyErr_NoMemory();
                        goto done;
                    }
                    memcpy(grown, found, sizeof(Found) * (size_t)count);
                    if (found != stack_found) {
                        PyMem_Free(found);
                    }
                    found = grown;
                    capacity *= 2;
                }
                Found *entry = &found[count++];
                entry->start = start;
                entry->end = end;
                entry->value = start < hit ? -value : value;
                entry->key_start = bound(quote + 1, size);
                entry->key_stop = stop;
            }
            hit = find(raw, size, tokens[kind], lengths[kind], end);
        }
    }
    if (count == 0) {
        /* The tokens were all inside strings (or bare where orjson refuses them). */
        PyObject *none_found = PyList_New(0);
        if (none_found != NULL) {
            result = PyTuple_Pack(2, args[0], none_found);
            Py_DECREF(none_found);
        }
        goto done;
    }
    qsort(found, (size_t)count, sizeof(Found), by_start);
    /* The pieces are sliced as Python slices them (raw[position:start], negative bounds
     * included: a start of -1 is possible at a line that begins with "Infinity"). */
    PyObject *restores = PyList_New(count);
    if (restores == NULL) {
        goto done;
    }
    Py_ssize_t text_size = 0;
    Py_ssize_t position = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        Found *entry = &found[i];
        Py_ssize_t key_size = entry->key_stop - entry->key_start;
        const unsigned char *key = raw + entry->key_start;
        if (key_size > 0 && memchr(key, '\\', (size_t)key_size) != NULL) {
            Py_DECREF(restores);
            result = Py_NewRef(Py_None);
            goto done;
        }
        PyObject *name = PyUnicode_DecodeUTF8((const char *)key, key_size > 0 ? key_size : 0, "strict");
        if (name == NULL) {
            Py_DECREF(restores);
            if (PyErr_ExceptionMatches(PyExc_UnicodeDecodeError)) {
                PyErr_Clear();  /* a key that is not UTF-8: the careful path answers */
                result = Py_NewRef(Py_None);
            }
            goto done;
        }
        PyObject *number = PyFloat_FromDouble(entry->value);
        PyObject *pair = number == NULL ? NULL : PyTuple_Pack(2, name, number);
        Py_DECREF(name);
        Py_XDECREF(number);
        if (pair == NULL) {
            Py_DECREF(restores);
            goto done;
        }
        PyList_SET_ITEM(restores, i, pair);
        Py_ssize_t piece_start = bound(position, size);
        Py_ssize_t piece_stop = bound(entry->start, size);
        text_size += (piece_stop > piece_start ? piece_stop - piece_start : 0) + mark_size;
        position = entry->end;
    }
    Py_ssize_t tail_start = bound(position, size);
    text_size += size - tail_start;
    PyObject *text = PyBytes_FromStringAndSize(NULL, text_size);
    if (text == NULL) {
        Py_DECREF(restores);
        goto done;
    }
    char *out = PyBytes_AS_STRING(text);
    position = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        Py_ssize_t piece_start = bound(position, size);
        Py_ssize_t piece_stop = bound(found[i].start, size);
        if (piece_stop > piece_start) {
            memcpy(out, raw + piece_start, (size_t)(piece_stop - piece_start));
            out += piece_stop - piece_start;
        }
        memcpy(out, mark, (size_t)mark_size);
        out += mark_size;
        position = found[i].end;
    }
    memcpy(out, raw + tail_start, (size_t)(size - tail_start));
    result = PyTuple_Pack(2, text, restores);
    Py_DECREF(text);
    Py_DECREF(restores);
done:
    if (found != stack_found) {
        PyMem_Free(found);
    }
    return result;
}

/* An explicit stack of borrowed references, as the Python walk keeps: nothing runs Python
 * code during the walk, so the row cannot change under it. Exact types only (type(x) is
 * float / dict / list), as in the Python twin. */
static PyObject *
non_finite_count(PyObject *Py_UNUSED(module), PyObject *row)
{
    Py_ssize_t size = 0, capacity = 64;
    PyObject **stack = PyMem_Malloc(sizeof(PyObject *) * (size_t)capacity);
    if (stack == NULL) {
        return PyErr_NoMemory();
    }
    Py_ssize_t count = 0;
    stack[size++] = row;
    while (size > 0) {
        PyObject *item = stack[--size];
        Py_ssize_t more = 0;
        if (PyFloat_CheckExact(item)) {
            count += !isfinite(PyFloat_AS_DOUBLE(item));
            continue;
        }
        if (PyDict_CheckExact(item)) {
            more = PyDict_GET_SIZE(item);
        } else if (PyList_CheckExact(item)) {
            more = PyList_GET_SIZE(item);
        } else {
            continue;
        }
        if (size + more > capacity) {
            Py_ssize_t wanted = capacity;
            while (size + more > wanted) {
                wanted *= 2;
            }
            PyObject **grown = PyMem_Realloc(stack, sizeof(PyObject *) * (size_t)wanted);
            if (grown == NULL) {
                PyMem_Free(stack);
                return PyErr_NoMemory();
            }
            stack = grown;
            capacity = wanted;
        }
        if (PyDict_CheckExact(item)) {
            Py_ssize_t position = 0;
            PyObject *key, *value;
            while (PyDict_Next(item, &position, &key, &value)) {
                stack[size++] = value;
            }
        } else {
            for (Py_ssize_t i = 0; i < more; i++) {
                stack[size++] = PyList_GET_ITEM(item, i);
            }
        }
    }
    PyMem_Free(stack);
    return PyLong_FromSsize_t(count);
}

/* ---- merge_rows, aggregate_rows: a block's usable rows on their fast path, in one call ----
 *
 * Native twins of what corpusprov.stages.merge and corpusprov.stages.aggregate do for one
 * line when every check passes (jsonl.parse_line, rowparse._parse_fast, the stage's judge and
 * its block function's make_row): for each line either its output line and result tuple,
 * exactly as the Python path builds them, or nothing where only the Python path may answer
 * (anything unusual: blank, too long, escaped quotes, a parse error, a big integer, a missing
 * key, a non-finite key, a field of the wrong type, a non-finite policy other than keep, ...).
 * Both read the line with the transcoder of _canonical.h (orjson's bytes without orjson's
 * objects: the values of a row are never built, only the few a result reads) and refuse what
 * it refuses. Merge writes the canonical line; aggregate writes the unified row from the
 * members' canonical text and its own printed scores. Each works in two phases (see
 * answer_block): the per-line work without the GIL, so a stage may run blocks in threads,
 * then the result tuples. Each function is property-tested against the Python path. */

static PyObject *source_name;  /* "src_sha256" */
static PyObject *encoder_name; /* "encoder" */
static PyObject *preset_name;  /* "preset" */
static PyObject *vmaf_name;    /* "vmaf_score" */
static PyObject *src_name;     /* "src" */
static PyObject *mos_name;     /* "mos" */
static PyObject *std_name;     /* "mos_std_dev" */
static PyObject *corpus_name;  /* "corpus" */
static PyObject *corpus_source_name; /* "corpus_source" */
static PyObject *mos_native_name;    /* "mos_native" */
static PyObject *mos_scale_name;     /* "mos_native_scale" */
static PyObject *option_kw;    /* ("option",) */

/* What both stages' contexts start with (the first 8 items of the context tuple). */
typedef struct {
    PyObject *loads, *dumps, *key_person;
    PyObject *required, *key_fields;
    int crlf_accept, keep_non_finite;
    Py_ssize_t max_line_bytes;
} RowContext;

#define ROW_CONTEXT_ITEMS 8

static int
row_context(PyObject *tuple, Py_ssize_t items, RowContext *c)
{
    if (!PyTuple_Check(tuple) || PyTuple_GET_SIZE(tuple) != items) {
        PyErr_Format(PyExc_TypeError, "context: expected a %zd-tuple", items);
        return -1;
    }
    PyObject *const *ctx = ((PyTupleObject *)tuple)->ob_item;
    c->loads = ctx[0];
    c->dumps = ctx[1];
    c->key_person = ctx[2];
    c->required = ctx[3];
    c->key_fields = ctx[4];
    c->crlf_accept = PyObject_IsTrue(ctx[5]);
    c->max_line_bytes = PyLong_AsSsize_t(ctx[6]);
    c->keep_non_finite = PyObject_IsTrue(ctx[7]);
    if (c->crlf_accept < 0 || c->keep_non_finite < 0 || (c->max_line_bytes == -1 && PyErr_Occurred())) {
        return -1;
    }
    if (!PyTuple_Check(c->required) || !PyTuple_Check(c->key_fields) || !PyBytes_Check(c->key_person)) {
        PyErr_SetString(PyExc_TypeError, "context: required and key_fields must be tuples, the personalisation bytes");
        return -1;
    }
    return 0;
}

/* A 16-byte BLAKE2b digest of data with ``person`` (a bytes object), as a new bytes object:
 * hashlib.blake2b(data, digest_size=16, person=person).digest() without the hashlib object. */
static PyObject *
digest16(const char *data, Py_ssize_t size, PyObject *person)
{
    unsigned char digest[16];
    blake2b_person((const unsigned char *)data, (size_t)size, (const unsigned char *)PyBytes_AS_STRING(person),
                   (size_t)PyBytes_GET_SIZE(person), digest, sizeof digest);
    return PyBytes_FromStringAndSize((const char *)digest, sizeof digest);
}

static PyObject *
get_or_none(PyObject *row, PyObject *name)
{
    PyObject *value = PyDict_GetItemWithError(row, name);
    if (value == NULL) {
        return PyErr_Occurred() ? NULL : Py_None;
    }
    return value;
}

/* ---- what both stages' block functions share ---- */

/* A field name as UTF-8 (borrowed from its str), for lookups among a line's members. */
typedef struct {
    const char *text;
    Py_ssize_t size;
    PyObject *name;
} FieldName;

/* The fields the stages' native lines read by name. */
static const FieldName corpus_source_field = {"corpus_source", 13, NULL};
static const FieldName corpus_field = {"corpus", 6, NULL};
static const FieldName mos_field = {"mos", 3, NULL};
static const FieldName std_field = {"mos_std_dev", 11, NULL};
static const FieldName src_field = {"src", 3, NULL};
static const FieldName sha_field = {"src_sha256", 10, NULL};

static int
field_compare(const void *a, const void *b)
{
    const FieldName *x = a, *y = b;
    return cp_bytes_compare(x->text, x->size, y->text, y->size);
}

/* The member named ``name`` among the transcoded line's sorted members, or NULL. */
static CpMember *
find_member(CpLine *t, const FieldName *name)
{
    Py_ssize_t low = 0, high = t->count;
    while (low < high) {
        Py_ssize_t middle = (low + high) / 2;
        CpMember *m = &t->members[middle];
        int order = cp_bytes_compare(m->key, m->key_size, name->text, name->size);
        if (order == 0) {
            return m;
        }
        if (order < 0) {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    return NULL;
}

/* The str names of ``names`` as UTF-8; ``sorted``: sorted, duplicates once. */
static int
field_names(PyObject *names, int sorted, FieldName **out, Py_ssize_t *count)
{
    Py_ssize_t total = PyTuple_GET_SIZE(names);
    FieldName *fields = PyMem_Malloc(sizeof(FieldName) * (size_t)(total > 0 ? total : 1));
    *out = fields;
    *count = 0;
    if (fields == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < total; i++) {
        PyObject *name = PyTuple_GET_ITEM(names, i);
        if (!PyUnicode_Check(name)) {
            PyErr_SetString(PyExc_TypeError, "field names must be str");
            return -1;
        }
        fields[i].name = name;
        fields[i].text = PyUnicode_AsUTF8AndSize(name, &fields[i].size);
        if (fields[i].text == NULL) {
            return -1;
        }
    }
    if (!sorted) {
        *count = total;
        return 0;
    }
    qsort(fields, (size_t)total, sizeof(FieldName), field_compare);
    Py_ssize_t kept = 0;
    for (Py_ssize_t i = 0; i < total; i++) {
        if (kept == 0 || field_compare(&fields[kept - 1], &fields[i]) != 0) {
            fields[kept++] = fields[i];
        }
    }
    *count = kept;
    return 0;
}

/* jsonl.parse_line's limits on a raw line: 0 where Python's path answers (too long, empty, a
 * CR the options refuse), else 1 with ``*size`` less the CR. */
static int
line_body(const RowContext *c, const unsigned char *data, Py_ssize_t *size)
{
    if (*size > c->max_line_bytes || *size == 0) {
        return 0;
    }
    if (data[*size - 1] == '\r') {
        if (!c->crlf_accept) {
            return 0;
        }
        *size -= 1;
    }
    return 1;
}

/* check_line: every required key (both sorted: one walk). */
static int
has_required(const CpLine *t, const FieldName *required, Py_ssize_t count)
{
    Py_ssize_t at = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        int order = 1;
        while (at < t->count) {
            const CpMember *m = &t->members[at];
            order = cp_bytes_compare(m->key, m->key_size, required[i].text, required[i].size);
            if (order >= 0) {
                break;
            }
            at++;
        }
        if (order != 0) {
            return 0;
        }
    }
    return 1;
}

/* An integral float's text as the int it equals ("%lld"), at ``out`` (24 bytes); 0 past 63 bits. */
static int
whole_text(double number, char *out, Py_ssize_t *size)
{
    if (!(fabs(number) < 9223372036854775808.0)) {
        return 0;
    }
    *size = sprintf(out, "%lld", (long long)number);
    return 1;
}

/* keys.key_digest's fast branch on the transcoded line: blake2b of orjson.dumps of the key
 * fields' values, an integral float as the int it equals (the values' orjson text is their
 * canonical text already), at ``out``. 1, 0 where key_digest takes another branch or raises
 * (a missing field, NaN, a list, an integral float beyond 63 bits), -1 out of memory. */
static int
key_digest_of(CpLine *t, const FieldName *keys, Py_ssize_t key_count, CpBuffer *text, PyObject *person,
              unsigned char out[16])
{
    text->size = 0;
    if (cp_reserve(text, 2) < 0) {
        return -1;
    }
    text->data[text->size++] = '[';
    for (Py_ssize_t i = 0; i < key_count; i++) {
        CpMember *m = find_member(t, &keys[i]);
        if (m == NULL || m->kind == CP_NAN || m->kind == CP_ARRAY) {
            return 0;
        }
        if (cp_reserve(text, m->size + 32) < 0) {
            return -1;
        }
        if (i > 0) {
            text->data[text->size++] = ',';
        }
        if (m->kind == CP_FLOAT && m->number == floor(m->number)) {
            Py_ssize_t size;
            if (!whole_text(m->number, text->data + text->size, &size)) {
                return 0;
            }
            text->size += size;
        } else {
            memcpy(text->data + text->size, t->values.data + m->at, (size_t)m->size);
            text->size += m->size;
        }
    }
    text->data[text->size++] = ']';
    blake2b_person((const unsigned char *)text->data, (size_t)text->size,
                   (const unsigned char *)PyBytes_AS_STRING(person), (size_t)PyBytes_GET_SIZE(person), out, 16);
    return 1;
}

/* What phase one of a block (no GIL) keeps of each line; every stage's answer starts with it. */
typedef struct {
    int answered;                   /* 1: take it; 0: the Python path answers; -1: out of memory */
    Py_ssize_t line_at, line_size;  /* the output line, in BlockOut.lines */
    Py_ssize_t nans;                /* non-finite values the row keeps */
} AnswerHead;

/* What phase one writes for a block's answered lines. */
typedef struct {
    CpBuffer lines; /* the output lines, joined */
    CpBuffer arena; /* whatever else a stage's answers point into */
} BlockOut;

/* What phase one of both stages starts with: jsonl.parse_line's limits, the transcoder,
 * check_line's required keys. 1 to go on; else 0 with ``head->answered`` set (0: the Python
 * path answers; -1: out of memory). */
static int
transcode_line(const RowContext *row, CpLine *t, const FieldName *required, Py_ssize_t required_count,
               const unsigned char *data, Py_ssize_t size, AnswerHead *head)
{
    head->answered = 0;
    if (!line_body(row, data, &size)) {
        return 0;
    }
    int status = cp_transcode(t, data, size);
    if (status != CP_OK) {
        head->answered = status == CP_NO_MEMORY ? -1 : 0;
        return 0;
    }
    return has_required(t, required, required_count);
}

/* Append the ``size`` bytes at ``text`` to ``block->lines`` as ``head``'s line; -1 out of memory. */
static int
put_line(BlockOut *block, AnswerHead *head, const char *text, Py_ssize_t size)
{
    if (cp_reserve(&block->lines, size) < 0) {
        return -1;
    }
    head->line_at = block->lines.size;
    head->line_size = size;
    memcpy(block->lines.data + block->lines.size, text, (size_t)size);
    block->lines.size += size;
    return 0;
}

typedef void (*LineFunction)(void *context, const unsigned char *data, Py_ssize_t size, AnswerHead *answer,
                             BlockOut *block);
typedef PyObject *(*RowFunction)(void *context, const AnswerHead *answer, const BlockOut *block);

/* A block's lines: phase one (``line``) for all of them with the GIL released, so a stage may
 * run blocks in threads; then, with the GIL, phase two (``row``) makes each answered line's
 * result tuple. Returns (answered, rows, lines, lengths, kept): one byte a line, 1 where the
 * native path answered; the answered lines' result tuples, in order; their output lines,
 * joined; their lengths (an array("I") as bytes); the non-finite values they keep. */
static PyObject *
answer_block(PyObject *lines, void *context, LineFunction line, RowFunction row, size_t answer_size)
{
    if (!PyList_Check(lines)) {
        PyErr_SetString(PyExc_TypeError, "lines: expected a list of bytes");
        return NULL;
    }
    Py_ssize_t count = PyList_GET_SIZE(lines);
    size_t slots = (size_t)(count > 0 ? count : 1);
    char *answers = PyMem_RawCalloc(slots, answer_size);
    const unsigned char **data = PyMem_RawMalloc(sizeof(*data) * slots);
    Py_ssize_t *sizes = PyMem_RawMalloc(sizeof(*sizes) * slots);
    BlockOut block = {{NULL, 0, 0}, {NULL, 0, 0}};
    PyObject *mask = NULL, *rows = NULL, *joined = NULL, *lengths = NULL, *result = NULL;
    if (answers == NULL || data == NULL || sizes == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *raw = PyList_GET_ITEM(lines, i);
        data[i] = PyBytes_CheckExact(raw) ? (const unsigned char *)PyBytes_AS_STRING(raw) : NULL;
        sizes[i] = data[i] == NULL ? 0 : PyBytes_GET_SIZE(raw);
    }
    /* The list is the block's own and its bytes are immutable: safe to read without the GIL
     * while the caller's reference keeps them alive. */
    int no_memory = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < count && !no_memory; i++) {
        AnswerHead *head = (AnswerHead *)(answers + (size_t)i * answer_size);
        /* (A line past 2 GiB is the Python path's: lengths are 32-bit.) */
        if (data[i] != NULL && sizes[i] < ((Py_ssize_t)1 << 31)) {
            line(context, data[i], sizes[i], head, &block);
            no_memory = head->answered < 0;
        }
    }
    Py_END_ALLOW_THREADS
    if (no_memory) {
        PyErr_NoMemory();
        goto done;
    }
    mask = PyBytes_FromStringAndSize(NULL, count);
    rows = PyList_New(0);
    if (mask == NULL || rows == NULL) {
        goto done;
    }
    char *taken = PyBytes_AS_STRING(mask);
    Py_ssize_t kept = 0, lost = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        AnswerHead *head = (AnswerHead *)(answers + (size_t)i * answer_size);
        taken[i] = 0;
        if (head->answered != 1) {
            continue;
        }
        PyObject *tuple = row(context, head, &block);
        if (tuple == NULL) {
            /* An exception is the line's (Python's path meets it again and answers);
             * running out of memory, or an interrupt, is the run's. */
            if (PyErr_ExceptionMatches(PyExc_MemoryError) || !PyErr_ExceptionMatches(PyExc_Exception)) {
                goto done;
            }
            PyErr_Clear();
            head->answered = 0;
            lost++;
            continue;
        }
        int appended = PyList_Append(rows, tuple);
        Py_DECREF(tuple);
        if (appended < 0) {
            goto done;
        }
        taken[i] = 1;
        kept += head->nans;
    }
    Py_ssize_t answered = PyList_GET_SIZE(rows);
    lengths = PyBytes_FromStringAndSize(NULL, answered * (Py_ssize_t)sizeof(uint32_t));
    joined = lost == 0 ? PyBytes_FromStringAndSize(block.lines.data, block.lines.size)
                       : PyBytes_FromStringAndSize(NULL, block.lines.size);
    if (lengths == NULL || joined == NULL) {
        goto done;
    }
    uint32_t *length = (uint32_t *)PyBytes_AS_STRING(lengths);
    char *at = PyBytes_AS_STRING(joined);
    for (Py_ssize_t i = 0; i < count; i++) {
        AnswerHead *head = (AnswerHead *)(answers + (size_t)i * answer_size);
        if (head->answered == 1) {
            *length++ = (uint32_t)head->line_size;
            if (lost > 0) {
                memcpy(at, block.lines.data + head->line_at, (size_t)head->line_size);
                at += head->line_size;
            }
        }
    }
    if (lost > 0 && _PyBytes_Resize(&joined, at - PyBytes_AS_STRING(joined)) < 0) {
        goto done;
    }
    result = Py_BuildValue("(OOOOn)", mask, rows, joined, lengths, kept);
done:
    Py_XDECREF(mask);
    Py_XDECREF(rows);
    Py_XDECREF(joined);
    Py_XDECREF(lengths);
    PyMem_RawFree(answers);
    PyMem_RawFree(data);
    PyMem_RawFree(sizes);
    cp_release(&block.lines);
    cp_release(&block.arena);
    return result;
}

/* ---- merge ---- */

typedef struct {
    RowContext row;
    PyObject *source_person;
    CpLine line;
    FieldName *required; /* sorted by bytes */
    Py_ssize_t required_count;
    FieldName *keys; /* the key fields, in their order */
    Py_ssize_t key_count;
    FieldName *wanted; /* what the result tuple reads as values: encoder, preset, vmaf_score */
    Py_ssize_t wanted_count;
    CpBuffer key_text;
} MergeContext;

/* ((str(encoder), preset_text(preset)), vmaf or None) as the block function's make_row has them. */
static PyObject *
cell_and_vmaf(PyObject *row, PyObject **vmaf_out)
{
    PyObject *encoder = get_or_none(row, encoder_name);
    PyObject *preset = encoder == NULL ? NULL : get_or_none(row, preset_name);
    PyObject *vmaf = preset == NULL ? NULL : get_or_none(row, vmaf_name);
    if (vmaf == NULL) {
        return NULL;
    }
    if (PyFloat_CheckExact(vmaf)) {
        *vmaf_out = Py_NewRef(isfinite(PyFloat_AS_DOUBLE(vmaf)) ? vmaf : Py_None);
    } else if (PyLong_CheckExact(vmaf)) {
        double number = PyLong_AsDouble(vmaf);
        if (number == -1.0 && PyErr_Occurred()) {
            return NULL;
        }
        *vmaf_out = isfinite(number) ? PyFloat_FromDouble(number) : Py_NewRef(Py_None);
    } else {
        *vmaf_out = Py_NewRef(Py_None);
    }
    if (*vmaf_out == NULL) {
        return NULL;
    }
    PyObject *encoder_text = PyObject_Str(encoder);
    PyObject *preset_text = NULL;
    if (encoder_text != NULL) {
        double number = PyFloat_CheckExact(preset) ? PyFloat_AS_DOUBLE(preset) : 0.0;
        if (PyFloat_CheckExact(preset) && isfinite(number) && number == floor(number)) {
            PyObject *whole = PyLong_FromDouble(number);
            preset_text = whole == NULL ? NULL : PyObject_Str(whole);
            Py_XDECREF(whole);
        } else {
            preset_text = PyObject_Str(preset);
        }
    }
    PyObject *cell = preset_text == NULL ? NULL : PyTuple_Pack(2, encoder_text, preset_text);
    Py_XDECREF(encoder_text);
    Py_XDECREF(preset_text);
    if (cell == NULL) {
        Py_CLEAR(*vmaf_out);
    }
    return cell;
}

/* A member's value as orjson.loads gives it (NaN as the float the parser restores); its
 * canonical text at ``base + m->at``. */
static PyObject *
member_value(PyObject *loads, const char *base, const CpMember *m)
{
    const char *text = base + m->at;
    switch (m->kind) {
    case CP_STRING:
        if (!m->escaped) {
            return PyUnicode_DecodeUTF8(text + 1, m->size - 2, "strict");
        }
        break;
    case CP_INT: {
        char digits[24];
        memcpy(digits, text, (size_t)m->size);
        digits[m->size] = '\0';
        return PyLong_FromString(digits, NULL, 10);
    }
    case CP_FLOAT:
        return PyFloat_FromDouble(m->number);
    case CP_TRUE:
        Py_RETURN_TRUE;
    case CP_FALSE:
        Py_RETURN_FALSE;
    case CP_NULL:
        Py_RETURN_NONE;
    case CP_NAN:
        return PyFloat_FromDouble(Py_NAN);
    default:
        break;
    }
    PyObject *bytes = PyBytes_FromStringAndSize(text, m->size);
    if (bytes == NULL) {
        return NULL;
    }
    PyObject *value = PyObject_CallOneArg(loads, bytes);
    Py_DECREF(bytes);
    return value;
}

/* What phase one keeps of a merge line for phase two. */
typedef struct {
    AnswerHead head;
    unsigned char digest[16], source[16];
    int has_source;
    CpMember fields[3]; /* c->wanted's (encoder, preset, vmaf_score); kind 0 when missing; text in the arena */
} MergeAnswer;

/* Phase one of a merge line, without the GIL (no Python objects made or touched beyond the
 * context's bytes): jsonl.parse_line + rowparse._parse_fast + check_line + the policy's
 * non-finite check + the key and source digests on the native transcoder. */
static void
merge_line_native(void *context, const unsigned char *data, Py_ssize_t size, AnswerHead *head, BlockOut *block)
{
    MergeContext *c = context;
    MergeAnswer *a = (MergeAnswer *)head;
    CpLine *t = &c->line;
    if (!transcode_line(&c->row, t, c->required, c->required_count, data, size, head)) {
        return;
    }
    if (t->nans > 0 && !c->row.keep_non_finite) {
        return; /* the policy changes or rejects the row: Python's path */
    }
    int keyed = key_digest_of(t, c->keys, c->key_count, &c->key_text, c->row.key_person, a->digest);
    if (keyed <= 0) {
        head->answered = keyed;
        return;
    }
    /* merge.source_digest: b"" unless src_sha256 is a non-empty string (one with escapes:
     * the Python path decodes it). */
    CpMember *source = find_member(t, &sha_field);
    a->has_source = source != NULL && source->kind == CP_STRING && source->size > 2;
    if (a->has_source) {
        if (source->escaped) {
            return;
        }
        blake2b_person((const unsigned char *)t->values.data + source->at + 1, (size_t)(source->size - 2),
                       (const unsigned char *)PyBytes_AS_STRING(c->source_person),
                       (size_t)PyBytes_GET_SIZE(c->source_person), a->source, 16);
    }
    for (Py_ssize_t i = 0; i < c->wanted_count && i < 3; i++) {
        CpMember *m = find_member(t, &c->wanted[i]);
        if (m == NULL) {
            a->fields[i].kind = 0;
            continue;
        }
        if (cp_reserve(&block->arena, m->size) < 0) {
            head->answered = -1;
            return;
        }
        a->fields[i] = *m;
        a->fields[i].at = block->arena.size;
        memcpy(block->arena.data + block->arena.size, t->values.data + m->at, (size_t)m->size);
        block->arena.size += m->size;
    }
    if (put_line(block, head, t->line.data, t->line.size) < 0) {
        head->answered = -1;
        return;
    }
    head->nans = t->nans;
    head->answered = 1;
}

/* Phase two, with the GIL: a new (digest, cell, vmaf, source digest) tuple. */
static PyObject *
merge_answer(void *context, const AnswerHead *head, const BlockOut *block)
{
    MergeContext *c = context;
    const MergeAnswer *a = (const MergeAnswer *)head;
    PyObject *row = PyDict_New();
    if (row == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < c->wanted_count && i < 3; i++) {
        if (a->fields[i].kind == 0) {
            continue;
        }
        PyObject *value = member_value(c->row.loads, block->arena.data, &a->fields[i]);
        if (value == NULL || PyDict_SetItem(row, c->wanted[i].name, value) < 0) {
            Py_XDECREF(value);
            Py_DECREF(row);
            return NULL;
        }
        Py_DECREF(value);
    }
    PyObject *vmaf = NULL;
    PyObject *cell = cell_and_vmaf(row, &vmaf);
    Py_DECREF(row);
    if (cell == NULL) {
        return NULL;
    }
    PyObject *digest = PyBytes_FromStringAndSize((const char *)a->digest, 16);
    PyObject *source = PyBytes_FromStringAndSize((const char *)a->source, a->has_source ? 16 : 0);
    PyObject *tuple = digest == NULL || source == NULL ? NULL : PyTuple_Pack(4, digest, cell, vmaf, source);
    Py_XDECREF(digest);
    Py_XDECREF(source);
    Py_DECREF(cell);
    Py_DECREF(vmaf);
    return tuple;
}

static PyObject *
merge_rows(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    MergeContext c;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "expected (lines, context)");
        return NULL;
    }
    if (row_context(args[1], ROW_CONTEXT_ITEMS + 1, &c.row) < 0) {
        return NULL;
    }
    c.source_person = PyTuple_GET_ITEM(args[1], ROW_CONTEXT_ITEMS);
    if (!PyBytes_Check(c.row.key_person) || !PyBytes_Check(c.source_person)) {
        PyErr_SetString(PyExc_TypeError, "context: the personalisations must be bytes");
        return NULL;
    }
    c.required = c.keys = c.wanted = NULL;
    memset(&c.key_text, 0, sizeof c.key_text);
    memset(&c.line, 0, sizeof c.line);
    PyObject *answers = NULL;
    PyObject *read = PyTuple_Pack(3, encoder_name, preset_name, vmaf_name);
    if (read != NULL && field_names(c.row.required, 1, &c.required, &c.required_count) == 0
        && field_names(c.row.key_fields, 0, &c.keys, &c.key_count) == 0
        && field_names(read, 1, &c.wanted, &c.wanted_count) == 0) {
        if (cp_init(&c.line) < 0) {
            PyErr_NoMemory();
        } else {
            answers = answer_block(args[0], &c, merge_line_native, merge_answer, sizeof(MergeAnswer));
        }
    }
    Py_XDECREF(read);
    PyMem_Free(c.required);
    PyMem_Free(c.keys);
    PyMem_Free(c.wanted);
    cp_release(&c.key_text);
    cp_free(&c.line);
    return answers;
}

/* ---- aggregate ---- */

enum { FIELD_STR = 0, FIELD_INT = 1, FIELD_FLOAT = 2 };
/* Where a unified field's value comes from: the input row (copied), or the stage. */
enum { OUT_COPIED = 0, OUT_MOS, OUT_NATIVE, OUT_SCALE, OUT_LABEL };

/* One entry of aggregate.scales, for lookups by the label's bytes. */
typedef struct {
    const char *text; /* the label, UTF-8 (borrowed from the scales dict's key) */
    Py_ssize_t size;
    PyObject *label;  /* that key (borrowed): the result's label */
    double native_min, native_max, slope, intercept, span;
    const char *scale_raw, *scale_json; /* the scale's label as UTF-8 and as JSON text (borrowed) */
    Py_ssize_t scale_raw_size, scale_json_size;
} AggScale;

/* One unified value as phase one holds it: its canonical text, and a string's UTF-8. */
typedef struct {
    const char *text;
    Py_ssize_t size;
    int kind;        /* CP_STRING, CP_NULL, CP_INT, CP_FLOAT or CP_NAN */
    const char *raw; /* a string's UTF-8; NULL for a string with escapes */
    Py_ssize_t raw_size;
} OutValue;

/* One field of the unified row. */
typedef struct {
    FieldName name;
    int source, kind, is_corpus;
    OutValue fallback; /* a copied field's default (its canonical text borrowed) */
} OutField;

typedef struct {
    RowContext row;
    AggScale *scales; /* sorted by label bytes */
    Py_ssize_t scale_count;
    OutField *out; /* the unified row's fields, sorted by name (its key order) */
    Py_ssize_t out_count;
    FieldName *required; /* sorted */
    Py_ssize_t required_count;
    FieldName *keys; /* the key fields, in their order */
    Py_ssize_t key_count;
    Py_ssize_t *key_out;        /* each key field's index in out, or -1 */
    Py_ssize_t out_src, out_sha; /* src's and src_sha256's index in out, or -1 */
    Py_ssize_t out_corpus_source, out_corpus, out_mos, out_std; /* the same for the fields the judge reads */
    const CpMember **found; /* per out field, the line's member of its name, or NULL */
    double slack;
    int std_unified;
    int has_override;            /* the shard has a label override... */
    const AggScale *override;    /* ...with this scale (NULL: none, the Python path rejects) */
    PyObject *override_json;     /* its JSON text (bytes) */
    CpLine line;
    CpBuffer key_text;
    OutValue *values; /* out_count of them */
    char *numbers;    /* 32 bytes per field, for printed numbers */
} AggregateContext;

typedef struct {
    AnswerHead head;
    unsigned char digest[16];
    double std, unified, native;
    const AggScale *scale;
    int dropped;
    Py_ssize_t sort_at, sort_size; /* the sort key, in BlockOut.arena */
} AggregateAnswer;


static const AggScale *
find_scale(const AggregateContext *c, const char *text, Py_ssize_t size)
{
    Py_ssize_t low = 0, high = c->scale_count;
    while (low < high) {
        Py_ssize_t middle = (low + high) / 2;
        int order = cp_bytes_compare(c->scales[middle].text, c->scales[middle].size, text, size);
        if (order == 0) {
            return &c->scales[middle];
        }
        if (order < 0) {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    return NULL;
}

/* An integer member's value; 0 where its text is no 64-bit integer. */
static int
member_int(const CpLine *t, const CpMember *m, long long *out)
{
    char digits[24];
    if (m->size >= (Py_ssize_t)sizeof digits) {
        return 0;
    }
    memcpy(digits, t->values.data + m->at, (size_t)m->size);
    digits[m->size] = '\0';
    char *end;
    errno = 0;
    *out = strtoll(digits, &end, 10);
    return errno == 0 && *end == '\0';
}

/* mosrow._number for a number that is no string, as the stage compares it: 1 with the double;
 * 0 for no number, or an int past 2**53 (a double would not be the int Python compares exactly). */
static int
member_number(const CpLine *t, const CpMember *m, double *out)
{
    if (m->kind == CP_FLOAT) {
        *out = m->number;
        return 1;
    }
    long long whole;
    if (m->kind != CP_INT || !member_int(t, m, &whole) || whole > (1LL << 53) || whole < -(1LL << 53)) {
        return 0;
    }
    *out = (double)whole;
    return 1;
}

static void
string_value(OutValue *v, const char *text, Py_ssize_t size, int escaped)
{
    v->text = text;
    v->size = size;
    v->kind = CP_STRING;
    v->raw = escaped ? NULL : text + 1;
    v->raw_size = size - 2;
}

/* The sort key's text for a unified value, as mosrow.sort_text gives it; 0 where Python's
 * path answers (a string with escapes). */
static int
sort_text_of(const OutValue *v, const char **text, Py_ssize_t *size)
{
    if (v == NULL || v->kind == CP_NULL) {
        *text = "";
        *size = 0;
        return 1;
    }
    if (v->kind == CP_STRING) {
        *text = v->raw;
        *size = v->raw_size;
        return v->raw != NULL;
    }
    *text = v->text;
    *size = v->size;
    return 1;
}

/* The line's member named ``name``, the walk's answer where it is a unified field (``index``). */
static inline const CpMember *
member_of(const AggregateContext *c, CpLine *t, Py_ssize_t index, const FieldName *name)
{
    return index >= 0 ? c->found[index] : find_member(t, name);
}

/* Phase one of an aggregate line, without the GIL: jsonl.parse_line + rowparse._parse_fast +
 * AggregateJudge.judge (label, scale, mos, std-dev, the unified row, the key) + the block
 * function's make_row (the unified line, the sort key), on the native transcoder. */
static void
aggregate_line_native(void *context, const unsigned char *data, Py_ssize_t size, AnswerHead *head,
                      BlockOut *block)
{
    AggregateContext *c = context;
    AggregateAnswer *a = (AggregateAnswer *)head;
    CpLine *t = &c->line;
    if (!transcode_line(&c->row, t, c->required, c->required_count, data, size, head)) {
        return;
    }
    /* Each unified field's member, and whether the row has a key the unified row does not
     * (dropped): members and fields are both sorted, so one walk. */
    int dropped = 0;
    Py_ssize_t k = 0;
    for (Py_ssize_t i = 0; i < c->out_count; i++) {
        c->found[i] = NULL;
        while (k < t->count) {
            const CpMember *member = &t->members[k];
            int order = cp_bytes_compare(member->key, member->key_size, c->out[i].name.text, c->out[i].name.size);
            if (order < 0) {
                dropped = 1;
                k++;
                continue;
            }
            if (order == 0) {
                c->found[i] = member;
                k++;
            }
            break;
        }
    }
    dropped |= k < t->count;
    const char *values = t->values.data;
    /* The label: the override, else corpus_source unless missing, null or empty, else corpus. */
    const AggScale *scale;
    const char *label_json;
    Py_ssize_t label_json_size;
    if (c->has_override) {
        scale = c->override;
        label_json = PyBytes_AS_STRING(c->override_json);
        label_json_size = PyBytes_GET_SIZE(c->override_json);
    } else {
        const CpMember *m = member_of(c, t, c->out_corpus_source, &corpus_source_field);
        if (m == NULL || m->kind == CP_NULL || (m->kind == CP_STRING && m->size == 2)) {
            m = member_of(c, t, c->out_corpus, &corpus_field);
        }
        if (m == NULL || m->kind != CP_STRING || m->escaped) {
            return; /* no label, not a string (Python's path rejects), or one to decode */
        }
        scale = find_scale(c, values + m->at + 1, m->size - 2);
        label_json = values + m->at;
        label_json_size = m->size;
    }
    if (scale == NULL) {
        return;
    }
    const CpMember *m = member_of(c, t, c->out_mos, &mos_field);
    double mos;
    if (m == NULL || !member_number(t, m, &mos)
        || !(scale->native_min - c->slack <= mos && mos <= scale->native_max + c->slack)) {
        return;
    }
    double unified = scale->slope * mos + scale->intercept;
    if (!isfinite(unified)) {
        return;
    }
    /* The std-dev the resolver compares (mosrow: unknown unless a positive finite number). */
    double std = 0.0;
    int std_known = 0;
    m = member_of(c, t, c->out_std, &std_field);
    if (m != NULL) {
        if (m->kind == CP_STRING) {
            return; /* a numeric string (counted by Python), or no number */
        }
        if (m->kind == CP_INT || m->kind == CP_FLOAT) {
            if (!member_number(t, m, &std)) {
                return;
            }
            std_known = 1;
        }
    }
    double std_compared = !std_known || !isfinite(std) || std <= 0 ? Py_HUGE_VAL
                          : c->std_unified                         ? std * 100.0 / scale->span
                                                                   : std;
    /* The unified row: mosrow.AggregateJudge._unified_row. */
    Py_ssize_t nans = 0;
    for (Py_ssize_t i = 0; i < c->out_count; i++) {
        const OutField *f = &c->out[i];
        OutValue *v = &c->values[i];
        char *number = c->numbers + 32 * i;
        int source = f->source;
        if (source == OUT_COPIED) {
            m = c->found[i];
            if ((m == NULL || m->kind == CP_NULL) && f->is_corpus) {
                source = OUT_LABEL; /* a missing corpus is the label */
            }
        }
        switch (source) {
        case OUT_MOS:
        case OUT_NATIVE:
            v->text = number;
            v->size = cp_format_double(source == OUT_MOS ? unified : mos, number);
            v->kind = CP_FLOAT;
            continue;
        case OUT_SCALE:
            v->text = scale->scale_json;
            v->size = scale->scale_json_size;
            v->kind = CP_STRING;
            v->raw = scale->scale_raw;
            v->raw_size = scale->scale_raw_size;
            continue;
        case OUT_LABEL:
            v->text = label_json;
            v->size = label_json_size;
            v->kind = CP_STRING;
            v->raw = scale->text;
            v->raw_size = scale->size;
            continue;
        default:
            break;
        }
        if (m == NULL || m->kind == CP_NULL) {
            *v = f->fallback;
            continue;
        }
        v->text = values + m->at;
        v->size = m->size;
        v->kind = m->kind;
        if (f->kind == FIELD_STR) {
            if (m->kind != CP_STRING) {
                return; /* bad_field: Python's path */
            }
            string_value(v, values + m->at, m->size, m->escaped);
        } else if (f->kind == FIELD_INT) {
            if (m->kind == CP_FLOAT) {
                /* int(1920.0); int(1e300) is a big integer only the careful writer writes. */
                if (!(m->number == floor(m->number) && fabs(m->number) < 9.0e18)) {
                    return;
                }
                whole_text(m->number, number, &v->size);
                v->text = number;
                v->kind = CP_INT;
            } else if (m->kind != CP_INT) {
                return;
            }
        } else {
            if (m->kind == CP_NAN) {
                nans++;
            } else if (m->kind == CP_INT) {
                long long whole;
                if (!member_int(t, m, &whole)) {
                    return;
                }
                v->text = number;
                v->size = cp_format_double((double)whole, number);
                v->kind = CP_FLOAT;
            } else if (m->kind != CP_FLOAT) {
                return;
            }
        }
    }
    if (nans > 0 && !c->row.keep_non_finite) {
        return; /* the policy changes or rejects the row: Python's path */
    }
    /* The key: mosrow.AggregateJudge._key, over the input row. */
    int keyed = 1;
    for (Py_ssize_t i = 0; i < c->key_count && keyed; i++) {
        m = member_of(c, t, c->key_out[i], &c->keys[i]);
        keyed = m != NULL && m->kind == CP_STRING && m->size > 2;
    }
    if (keyed) {
        int digested = key_digest_of(t, c->keys, c->key_count, &c->key_text, c->row.key_person, a->digest);
        if (digested <= 0) {
            head->answered = digested;
            return;
        }
    } else {
        /* key_digest({"\0fallback": True, "src": src, "corpus_source": label}) */
        CpBuffer *text = &c->key_text;
        m = member_of(c, t, c->out_src, &src_field);
        char whole[24];
        const char *src = "null";
        Py_ssize_t src_size = 4;
        if (m != NULL) {
            if (m->kind == CP_NAN || m->kind == CP_ARRAY) {
                return;
            }
            src = values + m->at;
            src_size = m->size;
            if (m->kind == CP_FLOAT && m->number == floor(m->number)) {
                if (!whole_text(m->number, whole, &src_size)) {
                    return;
                }
                src = whole;
            }
        }
        text->size = 0;
        if (cp_reserve(text, 8 + src_size + label_json_size) < 0) {
            head->answered = -1;
            return;
        }
        memcpy(text->data, "[true,", 6);
        text->size = 6;
        memcpy(text->data + text->size, src, (size_t)src_size);
        text->size += src_size;
        text->data[text->size++] = ',';
        memcpy(text->data + text->size, label_json, (size_t)label_json_size);
        text->size += label_json_size;
        text->data[text->size++] = ']';
        blake2b_person((const unsigned char *)text->data, (size_t)text->size,
                       (const unsigned char *)PyBytes_AS_STRING(c->row.key_person),
                       (size_t)PyBytes_GET_SIZE(c->row.key_person), a->digest, 16);
    }
    /* The sort key: mosrow.AggregateJudge.sort_key(unified row, label), label \0 sort_text(src_sha256) \0 tail. */
    const char *sha;
    Py_ssize_t sha_size;
    if (!sort_text_of(c->out_sha >= 0 ? &c->values[c->out_sha] : NULL, &sha, &sha_size)) {
        return;
    }
    int out_keyed = 1;
    Py_ssize_t tail_size = 0;
    for (Py_ssize_t i = 0; i < c->key_count && out_keyed; i++) {
        const OutValue *v = c->key_out[i] >= 0 ? &c->values[c->key_out[i]] : NULL;
        out_keyed = v != NULL && v->kind == CP_STRING && v->size > 2;
        if (out_keyed) {
            if (v->raw == NULL) {
                return;
            }
            tail_size += v->raw_size + (i > 0);
        }
    }
    const char *src = "";
    Py_ssize_t src_size = 0;
    if (!out_keyed) {
        const OutValue *v = c->out_src >= 0 ? &c->values[c->out_src] : NULL;
        if (v != NULL && v->kind != CP_NULL) {
            if (v->kind != CP_STRING || v->raw == NULL) {
                return;
            }
            src = v->raw;
            src_size = v->raw_size;
        }
        tail_size = 10 + src_size + 1 + scale->size; /* __nokey__/<src>/<label> */
    }
    /* The unified line: {"name":value,...}\n, the fields in key order. */
    Py_ssize_t total = 2 + c->out_count;
    for (Py_ssize_t i = 0; i < c->out_count; i++) {
        total += c->out[i].name.size + 3 + c->values[i].size;
    }
    CpBuffer *arena = &block->arena;
    if (cp_reserve(arena, scale->size + 1 + sha_size + 1 + tail_size) < 0 || cp_reserve(&block->lines, total) < 0) {
        head->answered = -1;
        return;
    }
    a->sort_at = arena->size;
    char *p = arena->data + arena->size;
    memcpy(p, scale->text, (size_t)scale->size);
    p += scale->size;
    *p++ = '\0';
    memcpy(p, sha, (size_t)sha_size);
    p += sha_size;
    *p++ = '\0';
    if (out_keyed) {
        for (Py_ssize_t i = 0; i < c->key_count; i++) {
            const OutValue *v = &c->values[c->key_out[i]];
            if (i > 0) {
                *p++ = '\0';
            }
            memcpy(p, v->raw, (size_t)v->raw_size);
            p += v->raw_size;
        }
    } else {
        memcpy(p, "__nokey__/", 10);
        p += 10;
        memcpy(p, src, (size_t)src_size);
        p += src_size;
        *p++ = '/';
        memcpy(p, scale->text, (size_t)scale->size);
        p += scale->size;
    }
    a->sort_size = p - (arena->data + arena->size);
    arena->size += a->sort_size;
    head->line_at = block->lines.size;
    p = block->lines.data + block->lines.size;
    *p++ = '{';
    for (Py_ssize_t i = 0; i < c->out_count; i++) {
        if (i > 0) {
            *p++ = ',';
        }
        *p++ = '"';
        memcpy(p, c->out[i].name.text, (size_t)c->out[i].name.size);
        p += c->out[i].name.size;
        *p++ = '"';
        *p++ = ':';
        memcpy(p, c->values[i].text, (size_t)c->values[i].size);
        p += c->values[i].size;
    }
    *p++ = '}';
    *p++ = '\n';
    head->line_size = p - (block->lines.data + block->lines.size);
    block->lines.size += head->line_size;
    a->std = std_compared;
    a->unified = unified;
    a->native = mos;
    a->scale = scale;
    a->dropped = dropped;
    head->nans = nans;
    head->answered = 1;
}

/* Phase two, with the GIL: (digest, label, std, sort key, unified, native, dropped). */
static PyObject *
aggregate_answer(void *Py_UNUSED(context), const AnswerHead *head, const BlockOut *block)
{
    const AggregateAnswer *a = (const AggregateAnswer *)head;
    PyObject *digest = PyBytes_FromStringAndSize((const char *)a->digest, 16);
    PyObject *std = PyFloat_FromDouble(a->std);
    PyObject *sort = PyBytes_FromStringAndSize(block->arena.data + a->sort_at, a->sort_size);
    PyObject *unified = PyFloat_FromDouble(a->unified);
    PyObject *native = PyFloat_FromDouble(a->native);
    PyObject *tuple = digest == NULL || std == NULL || sort == NULL || unified == NULL || native == NULL
                          ? NULL
                          : PyTuple_Pack(7, digest, a->scale->label, std, sort, unified, native,
                                         a->dropped ? Py_True : Py_False);
    Py_XDECREF(digest);
    Py_XDECREF(std);
    Py_XDECREF(sort);
    Py_XDECREF(unified);
    Py_XDECREF(native);
    return tuple;
}

static int
scale_compare(const void *a, const void *b)
{
    const AggScale *x = a, *y = b;
    return cp_bytes_compare(x->text, x->size, y->text, y->size);
}

static int
out_compare(const void *a, const void *b)
{
    const OutField *x = a, *y = b;
    return cp_bytes_compare(x->name.text, x->name.size, y->name.text, y->name.size);
}

/* The context's scales, unified fields and key positions as phase one reads them. */
static int
aggregate_setup(AggregateContext *c, PyObject *const *more, PyObject *override)
{
    PyObject *scales = more[0], *copied = more[3];
    c->slack = PyFloat_AsDouble(more[1]);
    c->std_unified = PyObject_IsTrue(more[2]);
    if ((c->slack == -1.0 && PyErr_Occurred()) || c->std_unified < 0) {
        return -1;
    }
    if (!PyDict_Check(scales) || !PyTuple_Check(copied) || !(override == Py_None || PyUnicode_CheckExact(override))) {
        PyErr_SetString(PyExc_TypeError, "context: scales dict, copied tuple; override str or None");
        return -1;
    }
    c->scales = PyMem_Calloc((size_t)PyDict_GET_SIZE(scales) + 1, sizeof(AggScale));
    c->out_count = PyTuple_GET_SIZE(copied) + 4;
    c->out = PyMem_Calloc((size_t)c->out_count, sizeof(OutField));
    c->values = PyMem_Calloc((size_t)c->out_count, sizeof(OutValue));
    c->found = PyMem_Calloc((size_t)c->out_count, sizeof(CpMember *));
    c->numbers = PyMem_Malloc((size_t)c->out_count * 32);
    c->key_out = PyMem_Calloc((size_t)PyTuple_GET_SIZE(c->row.key_fields) + 1, sizeof(Py_ssize_t));
    if (c->scales == NULL || c->out == NULL || c->values == NULL || c->found == NULL || c->numbers == NULL
        || c->key_out == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    Py_ssize_t position = 0;
    PyObject *label, *entry;
    while (PyDict_Next(scales, &position, &label, &entry)) {
        AggScale *s = &c->scales[c->scale_count];
        if (!PyUnicode_CheckExact(label) || !PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) != 7
            || !PyUnicode_CheckExact(PyTuple_GET_ITEM(entry, 5)) || !PyBytes_Check(PyTuple_GET_ITEM(entry, 6))) {
            PyErr_SetString(PyExc_TypeError,
                            "scales: label -> (min, max, slope, intercept, span, scale label, its JSON text)");
            return -1;
        }
        s->label = label;
        s->text = PyUnicode_AsUTF8AndSize(label, &s->size);
        s->native_min = PyFloat_AsDouble(PyTuple_GET_ITEM(entry, 0));
        s->native_max = PyFloat_AsDouble(PyTuple_GET_ITEM(entry, 1));
        s->slope = PyFloat_AsDouble(PyTuple_GET_ITEM(entry, 2));
        s->intercept = PyFloat_AsDouble(PyTuple_GET_ITEM(entry, 3));
        s->span = PyFloat_AsDouble(PyTuple_GET_ITEM(entry, 4));
        s->scale_raw = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(entry, 5), &s->scale_raw_size);
        s->scale_json = PyBytes_AS_STRING(PyTuple_GET_ITEM(entry, 6));
        s->scale_json_size = PyBytes_GET_SIZE(PyTuple_GET_ITEM(entry, 6));
        if (s->text == NULL || s->scale_raw == NULL || PyErr_Occurred()) {
            return -1;
        }
        c->scale_count++;
    }
    qsort(c->scales, (size_t)c->scale_count, sizeof(AggScale), scale_compare);
    static const struct {
        PyObject **name;
        int source;
    } computed[4] = {{&mos_name, OUT_MOS}, {&mos_native_name, OUT_NATIVE}, {&mos_scale_name, OUT_SCALE},
                     {&corpus_source_name, OUT_LABEL}};
    for (Py_ssize_t i = 0; i < c->out_count; i++) {
        OutField *f = &c->out[i];
        PyObject *name;
        if (i < 4) {
            name = *computed[i].name;
            f->source = computed[i].source;
        } else {
            PyObject *field = PyTuple_GET_ITEM(copied, i - 4);
            if (!PyTuple_Check(field) || PyTuple_GET_SIZE(field) != 3 || !PyUnicode_CheckExact(PyTuple_GET_ITEM(field, 0))
                || !PyBytes_Check(PyTuple_GET_ITEM(field, 2)) || PyBytes_GET_SIZE(PyTuple_GET_ITEM(field, 2)) == 0) {
                PyErr_SetString(PyExc_TypeError, "copied: (name, kind code, default's JSON text) each");
                return -1;
            }
            name = PyTuple_GET_ITEM(field, 0);
            f->source = OUT_COPIED;
            f->kind = (int)PyLong_AsLong(PyTuple_GET_ITEM(field, 1));
            const char *text = PyBytes_AS_STRING(PyTuple_GET_ITEM(field, 2));
            Py_ssize_t size = PyBytes_GET_SIZE(PyTuple_GET_ITEM(field, 2));
            OutValue *v = &f->fallback;
            if (text[0] == '"') {
                string_value(v, text, size, memchr(text, '\\', (size_t)size) != NULL);
            } else {
                v->text = text;
                v->size = size;
                v->kind = text[0] == 'n' ? CP_NULL : CP_FLOAT; /* (the sort key reads strings and null only) */
            }
            f->is_corpus = PyUnicode_Compare(name, corpus_name) == 0;
        }
        f->name.name = name;
        f->name.text = PyUnicode_AsUTF8AndSize(name, &f->name.size);
        if (f->name.text == NULL || PyErr_Occurred()) {
            return -1;
        }
    }
    qsort(c->out, (size_t)c->out_count, sizeof(OutField), out_compare);
    for (Py_ssize_t i = 1; i < c->out_count; i++) {
        if (out_compare(&c->out[i - 1], &c->out[i]) == 0) {
            PyErr_SetString(PyExc_ValueError, "copied: a field named twice, or one the stage computes");
            return -1;
        }
    }
    if (field_names(c->row.required, 1, &c->required, &c->required_count) < 0
        || field_names(c->row.key_fields, 0, &c->keys, &c->key_count) < 0) {
        return -1;
    }
    c->out_src = c->out_sha = c->out_corpus_source = c->out_corpus = c->out_mos = c->out_std = -1;
    const struct {
        const FieldName *field;
        Py_ssize_t *index;
    } read[6] = {{&src_field, &c->out_src}, {&sha_field, &c->out_sha}, {&corpus_source_field, &c->out_corpus_source},
                 {&corpus_field, &c->out_corpus}, {&mos_field, &c->out_mos}, {&std_field, &c->out_std}};
    for (Py_ssize_t i = 0; i < c->out_count; i++) {
        for (int r = 0; r < 6; r++) {
            if (field_compare(&c->out[i].name, read[r].field) == 0) {
                *read[r].index = i;
            }
        }
    }
    for (Py_ssize_t k = 0; k < c->key_count; k++) {
        c->key_out[k] = -1;
        for (Py_ssize_t i = 0; i < c->out_count; i++) {
            if (field_compare(&c->keys[k], &c->out[i].name) == 0) {
                c->key_out[k] = i;
            }
        }
    }
    c->has_override = override != Py_None;
    if (c->has_override) {
        Py_ssize_t size;
        const char *text = PyUnicode_AsUTF8AndSize(override, &size);
        if (text == NULL) {
            PyErr_Clear(); /* a label with a lone surrogate: no scale has it */
        } else {
            c->override = find_scale(c, text, size);
        }
        c->override_json = PyObject_CallOneArg(c->row.dumps, override);
        if (c->override_json == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_Exception)) {
                return -1;
            }
            PyErr_Clear();
            c->override = NULL;
        } else if (!PyBytes_Check(c->override_json)) {
            PyErr_SetString(PyExc_TypeError, "dumps: expected bytes");
            return -1;
        }
    }
    if (cp_init(&c->line) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    c->line.members_only = 1;
    return 0;
}

static PyObject *
aggregate_rows(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "expected (lines, context, override)");
        return NULL;
    }
    AggregateContext c;
    memset(&c, 0, sizeof c);
    if (row_context(args[1], ROW_CONTEXT_ITEMS + 4, &c.row) < 0) {
        return NULL;
    }
    PyObject *result = NULL;
    if (aggregate_setup(&c, ((PyTupleObject *)args[1])->ob_item + ROW_CONTEXT_ITEMS, args[2]) == 0) {
        result = answer_block(args[0], &c, aggregate_line_native, aggregate_answer, sizeof(AggregateAnswer));
    }
    PyMem_Free(c.scales);
    PyMem_Free(c.out);
    PyMem_Free(c.values);
    PyMem_Free(c.found);
    PyMem_Free(c.numbers);
    PyMem_Free(c.key_out);
    PyMem_Free(c.required);
    PyMem_Free(c.keys);
    Py_XDECREF(c.override_json);
    cp_release(&c.key_text);
    cp_free(&c.line);
    return result;
}

/* format_float(x): x as orjson writes it (the transcoder's float printer). */
static PyObject *
format_float(PyObject *Py_UNUSED(module), PyObject *arg)
{
    double value = PyFloat_AsDouble(arg);
    if (value == -1.0 && PyErr_Occurred()) {
        return NULL;
    }
    if (!isfinite(value)) {
        PyErr_SetString(PyExc_ValueError, "format_float: a finite float");
        return NULL;
    }
    char text[32];
    int size = cp_format_double(value, text);
    return PyBytes_FromStringAndSize(text, size);
}

/* canonical(raw): the transcoder's canonical line of one raw line (no line break), or None. */
static PyObject *
canonical(PyObject *Py_UNUSED(module), PyObject *arg)
{
    const unsigned char *data;
    Py_ssize_t size;
    if (bytes_arg(arg, &data, &size) < 0) {
        return NULL;
    }
    CpLine t;
    if (cp_init(&t) < 0) {
        return PyErr_NoMemory();
    }
    int status = cp_transcode(&t, data, size);
    PyObject *result = status == CP_OK ? PyBytes_FromStringAndSize(t.line.data, t.line.size)
                       : status == CP_REFUSED ? Py_NewRef(Py_None)
                                              : PyErr_NoMemory();
    cp_free(&t);
    return result;
}

/* blake2b16(data, person): hashlib.blake2b(data, digest_size=16, person=person).digest(). */
static PyObject *
blake2b16(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    const unsigned char *data, *person;
    Py_ssize_t size, person_size;
    if (nargs != 2 || bytes_arg(args[0], &data, &size) < 0 || bytes_arg(args[1], &person, &person_size) < 0) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, "expected (data, person)");
        }
        return NULL;
    }
    if (person_size > 16) {
        PyErr_SetString(PyExc_ValueError, "person: at most 16 bytes");
        return NULL;
    }
    return digest16((const char *)data, size, args[1]);
}

static PyMethodDef bytescan_methods[] = {
    {"blake2b16", (PyCFunction)(void (*)(void))blake2b16, METH_FASTCALL,
     "hashlib.blake2b(data, digest_size=16, person=person).digest(), natively."},
    {"format_float", (PyCFunction)format_float, METH_O, "A finite float as orjson writes it (the native printer)."},
    {"canonical", (PyCFunction)canonical, METH_O,
     "The native transcoder's canonical line of one raw line, or None where the Python path answers."},
    {"quote_count", (PyCFunction)quote_count, METH_O, "data.count(b'\"')."},
    {"long_integer", (PyCFunction)long_integer, METH_O,
     "True when 19+ digits follow white space, ':', ',', '[' or '-' (an integer that may not fit 64 bits)."},
    {"substitute_non_finite", (PyCFunction)(void (*)(void))substitute_non_finite, METH_FASTCALL,
     "rowparse's NaN/Infinity swap: (text, [(key, value)]) or None."},
    {"non_finite_count", (PyCFunction)non_finite_count, METH_O,
     "The NaN and infinite floats at any depth of a row's dicts and lists."},
    {"merge_rows", (PyCFunction)(void (*)(void))merge_rows, METH_FASTCALL,
     "merge_rows(lines, context) -> (answered, rows, lines, lengths, non-finite values kept)."},
    {"aggregate_rows", (PyCFunction)(void (*)(void))aggregate_rows, METH_FASTCALL,
     "aggregate_rows(lines, context, override) -> (answered, rows, lines, lengths, non-finite values kept)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef bytescan_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "corpusprov._bytescan",
    .m_doc = "Byte checks of the parser's fast path (native twins of corpusprov.io.rowparse's).",
    .m_size = -1,
    .m_methods = bytescan_methods,
};

PyMODINIT_FUNC
PyInit__bytescan(void)
{
    source_name = PyUnicode_InternFromString("src_sha256");
    encoder_name = PyUnicode_InternFromString("encoder");
    preset_name = PyUnicode_InternFromString("preset");
    vmaf_name = PyUnicode_InternFromString("vmaf_score");
    src_name = PyUnicode_InternFromString("src");
    mos_name = PyUnicode_InternFromString("mos");
    std_name = PyUnicode_InternFromString("mos_std_dev");
    corpus_name = PyUnicode_InternFromString("corpus");
    corpus_source_name = PyUnicode_InternFromString("corpus_source");
    mos_native_name = PyUnicode_InternFromString("mos_native");
    mos_scale_name = PyUnicode_InternFromString("mos_native_scale");
    /* The keyword name interned: orjson matches it by identity. */
    PyObject *option = PyUnicode_InternFromString("option");
    option_kw = option == NULL ? NULL : PyTuple_Pack(1, option);
    Py_XDECREF(option);
    if (source_name == NULL || encoder_name == NULL || preset_name == NULL || vmaf_name == NULL || src_name == NULL
        || mos_name == NULL || std_name == NULL || corpus_name == NULL || corpus_source_name == NULL
        || mos_native_name == NULL || mos_scale_name == NULL || option_kw == NULL) {
        return NULL;
    }
    return PyModule_Create(&bytescan_module);
}
