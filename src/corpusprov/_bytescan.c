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
 * And the merge stage's block of rows in one call (see merge_rows below):
 *
 *   merge_rows(lines, context)
 *                             per line, what the Python path gives a usable merge row (its
 *                             canonical line and result tuple), or None where only that
 *                             path may answer
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

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

/* ---- merge_rows: a block's merge rows on their fast path, in one call ----
 *
 * The native twin of what corpusprov.stages.merge does for one line when every check passes
 * (jsonl.parse_line, rowparse._parse_fast with write=True, MergeJudge.judge and the block
 * function's make_row): for each line either ``(canonical line, result tuple)``, exactly as
 * the Python path builds them, or None where only the Python path may answer (anything
 * unusual: blank, too long, escaped quotes, a parse error, a big integer, a missing key, a
 * non-finite key, a non-finite policy other than keep, ...). orjson does the parsing and
 * writing here too (its loads and dumps come in the context), so the bytes are orjson's. */

static PyObject *digest_name;  /* "digest" */
static PyObject *source_name;  /* "src_sha256" */
static PyObject *encoder_name; /* "encoder" */
static PyObject *preset_name;  /* "preset" */
static PyObject *vmaf_name;    /* "vmaf_score" */
static PyObject *option_kw;    /* ("option",) */
static PyObject *hash_kw;      /* ("digest_size", "person") */
static PyObject *sixteen;      /* 16 */

typedef struct {
    PyObject *loads, *dumps, *dumps_option, *blake2b, *key_person, *source_person;
    PyObject *required, *key_fields, *mark, *mark_str;
    int crlf_accept, keep_non_finite;
    Py_ssize_t max_line_bytes;
} MergeContext;

static PyObject *
hash16(PyObject *blake2b, PyObject *data, PyObject *person)
{
    PyObject *args[3] = {data, sixteen, person};
    PyObject *hasher = PyObject_Vectorcall(blake2b, args, 1, hash_kw);
    if (hasher == NULL) {
        return NULL;
    }
    PyObject *digest = PyObject_CallMethodNoArgs(hasher, digest_name);
    Py_DECREF(hasher);
    return digest;
}

/* keys.key_digest's fast branch; NULL without an exception where it would take another. */
static PyObject *
key_digest(MergeContext *c, PyObject *row)
{
    Py_ssize_t count = PyTuple_GET_SIZE(c->key_fields);
    PyObject *values = PyList_New(count);
    if (values == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *value = PyDict_GetItemWithError(row, PyTuple_GET_ITEM(c->key_fields, i));
        PyObject *kept = NULL;
        if (value == NULL) {
            /* PyList items left NULL are fine to DECREF */
        } else if (PyFloat_CheckExact(value)) {
            double number = PyFloat_AS_DOUBLE(value);
            if (isfinite(number)) {
                kept = number == floor(number) ? PyLong_FromDouble(number) : Py_NewRef(value);
            }
        } else if (PyUnicode_CheckExact(value) || PyLong_CheckExact(value) || PyBool_Check(value)
                   || value == Py_None) {
            kept = Py_NewRef(value);
        }
        if (kept == NULL) {
            Py_DECREF(values);
            return NULL;
        }
        PyList_SET_ITEM(values, i, kept);
    }
    PyObject *encoded = PyObject_CallOneArg(c->dumps, values);
    Py_DECREF(values);
    if (encoded == NULL) {
        return NULL;
    }
    PyObject *digest = hash16(c->blake2b, encoded, c->key_person);
    Py_DECREF(encoded);
    return digest;
}

/* merge.source_digest */
static PyObject *
source_digest(MergeContext *c, PyObject *row)
{
    PyObject *source = PyDict_GetItemWithError(row, source_name);
    if (source == NULL && PyErr_Occurred()) {
        return NULL;
    }
    if (source == NULL || !PyUnicode_CheckExact(source) || PyUnicode_GET_LENGTH(source) == 0) {
        return PyBytes_FromStringAndSize("", 0);
    }
    Py_ssize_t size;
    const char *text = PyUnicode_AsUTF8AndSize(source, &size);
    if (text == NULL) {
        return NULL;
    }
    PyObject *encoded = PyBytes_FromStringAndSize(text, size);
    if (encoded == NULL) {
        return NULL;
    }
    PyObject *digest = hash16(c->blake2b, encoded, c->source_person);
    Py_DECREF(encoded);
    return digest;
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
        if (PyFloat_CheckExact(preset) && PyFloat_AS_DOUBLE(preset) == floor(PyFloat_AS_DOUBLE(preset))
            && isfinite(PyFloat_AS_DOUBLE(preset))) {
            PyObject *whole = PyLong_FromDouble(PyFloat_AS_DOUBLE(preset));
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

static const char *
token_of(double value, Py_ssize_t *length)
{
    if (isnan(value)) {
        *length = 3;
        return "NaN";
    }
    *length = value > 0 ? 8 : 9;
    return value > 0 ? "Infinity" : "-Infinity";
}

/* canonical.restore_marks: every mark in line swapped for the one token all values share;
 * NULL without an exception where it answers None. */
static PyObject *
restore_marks(MergeContext *c, PyObject *line, PyObject *restores)
{
    Py_ssize_t count = PyList_GET_SIZE(restores);
    Py_ssize_t token_size = 0;
    const char *token = NULL;
    for (Py_ssize_t i = 0; i < count; i++) {
        double value = PyFloat_AS_DOUBLE(PyTuple_GET_ITEM(PyList_GET_ITEM(restores, i), 1));
        Py_ssize_t size;
        const char *this = token_of(value, &size);
        if (token != NULL && this != token) {
            return NULL;
        }
        token = this;
        token_size = size;
    }
    const unsigned char *data = (const unsigned char *)PyBytes_AS_STRING(line);
    Py_ssize_t size = PyBytes_GET_SIZE(line);
    const char *mark = PyBytes_AS_STRING(c->mark);
    Py_ssize_t mark_size = PyBytes_GET_SIZE(c->mark);
    Py_ssize_t seen = 0;
    for (Py_ssize_t hit = find(data, size, mark, mark_size, 0); hit != -1;
         hit = find(data, size, mark, mark_size, hit + mark_size)) {
        seen++;
    }
    if (seen != count) {
        return NULL;
    }
    PyObject *result = PyBytes_FromStringAndSize(NULL, size - count * (mark_size - token_size));
    if (result == NULL) {
        return NULL;
    }
    char *out = PyBytes_AS_STRING(result);
    Py_ssize_t position = 0;
    for (Py_ssize_t hit = find(data, size, mark, mark_size, 0); hit != -1;
         hit = find(data, size, mark, mark_size, hit + mark_size)) {
        memcpy(out, data + position, (size_t)(hit - position));
        out += hit - position;
        memcpy(out, token, (size_t)token_size);
        out += token_size;
        position = hit + mark_size;
    }
    memcpy(out, data + position, (size_t)(size - position));
    return result;
}

static int
has(const unsigned char *data, Py_ssize_t size, const char *token)
{
    return find(data, size, token, (Py_ssize_t)strlen(token), 0) != -1;
}

/* One line: a new (line, result) tuple, or NULL (an exception set or not: Python answers). */
static PyObject *
merge_line(MergeContext *c, PyObject *raw_line, Py_ssize_t *kept)
{
    const unsigned char *data = (const unsigned char *)PyBytes_AS_STRING(raw_line);
    Py_ssize_t size = PyBytes_GET_SIZE(raw_line);
    if (size > c->max_line_bytes || size == 0) {
        return NULL;
    }
    PyObject *raw = NULL, *text = NULL, *row = NULL, *line = NULL, *sub = NULL, *result = NULL;
    if (data[size - 1] == '\r') {
        if (!c->crlf_accept) {
            return NULL;
        }
        size--;
        raw = PyBytes_FromStringAndSize((const char *)data, size);
        if (raw == NULL) {
            return NULL;
        }
    } else {
        raw = Py_NewRef(raw_line);
    }
    if (size == 0 || data[0] != '{') {
        goto done; /* blank, white space first, or no object: Python's checks answer */
    }
    int escapes = memchr(data, '\\', (size_t)size) != NULL;
    if (escapes && (has(data, size, "\\\"") || has(data, size, "\\u0022"))) {
        goto done;
    }
    PyObject *restores = NULL;
    text = Py_NewRef(raw);
    if ((memchr(data, 'N', (size_t)size) && has(data, size, "NaN"))
        || (memchr(data, 'I', (size_t)size) && has(data, size, "Infinity"))) {
        if (!c->keep_non_finite) {
            goto done;
        }
        PyObject *args[2] = {raw, c->mark};
        sub = substitute_non_finite(NULL, args, 2);
        if (sub == NULL || sub == Py_None) {
            goto done;
        }
        Py_SETREF(text, Py_NewRef(PyTuple_GET_ITEM(sub, 0)));
        restores = PyTuple_GET_ITEM(sub, 1);
        if (PyList_GET_SIZE(restores) == 0) {
            restores = NULL;
        }
    }
    row = PyObject_CallOneArg(c->loads, text);
    if (row == NULL || !PyDict_CheckExact(row) || has_long_integer(data, size)) {
        goto done;
    }
    PyObject *dump_args[2] = {row, c->dumps_option};
    line = PyObject_Vectorcall(c->dumps, dump_args, 1, option_kw);
    if (line == NULL || !PyBytes_CheckExact(line)
        || count_quotes((const unsigned char *)PyBytes_AS_STRING(text), PyBytes_GET_SIZE(text))
               != count_quotes((const unsigned char *)PyBytes_AS_STRING(line), PyBytes_GET_SIZE(line))) {
        goto done;
    }
    if (restores != NULL) {
        Py_ssize_t count = PyList_GET_SIZE(restores);
        for (Py_ssize_t i = 0; i < count; i++) {
            PyObject *pair = PyList_GET_ITEM(restores, i);
            PyObject *held = PyDict_GetItemWithError(row, PyTuple_GET_ITEM(pair, 0));
            if (held == NULL || !PyUnicode_CheckExact(held) || PyUnicode_Compare(held, c->mark_str) != 0) {
                goto done;
            }
            if (PyDict_SetItem(row, PyTuple_GET_ITEM(pair, 0), PyTuple_GET_ITEM(pair, 1)) < 0) {
                goto done;
            }
        }
        PyObject *restored = restore_marks(c, line, restores);
        if (restored == NULL) {
            goto done;
        }
        Py_SETREF(line, restored);
    }
    /* MergeJudge.judge: every required key, then the natural key's digest. */
    Py_ssize_t required = PyTuple_GET_SIZE(c->required);
    for (Py_ssize_t i = 0; i < required; i++) {
        if (PyDict_Contains(row, PyTuple_GET_ITEM(c->required, i)) != 1) {
            goto done;
        }
    }
    PyObject *digest = key_digest(c, row);
    if (digest == NULL) {
        goto done;
    }
    PyObject *source = source_digest(c, row);
    PyObject *vmaf = NULL;
    PyObject *cell = source == NULL ? NULL : cell_and_vmaf(row, &vmaf);
    PyObject *tuple = cell == NULL ? NULL : PyTuple_Pack(4, digest, cell, vmaf, source);
    Py_DECREF(digest);
    Py_XDECREF(source);
    Py_XDECREF(cell);
    Py_XDECREF(vmaf);
    if (tuple == NULL) {
        goto done;
    }
    if (restores != NULL) {
        PyObject *counted = non_finite_count(NULL, row);
        if (counted == NULL) {
            Py_DECREF(tuple);
            goto done;
        }
        *kept += PyLong_AsSsize_t(counted);
        Py_DECREF(counted);
    }
    result = PyTuple_Pack(2, line, tuple);
    Py_DECREF(tuple);
done:
    Py_XDECREF(raw);
    Py_XDECREF(text);
    Py_XDECREF(sub);
    Py_XDECREF(row);
    Py_XDECREF(line);
    return result;
}

static PyObject *
merge_rows(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    MergeContext c;
    PyObject *lines;
    if (nargs != 2 || !PyList_Check(args[0]) || !PyTuple_Check(args[1]) || PyTuple_GET_SIZE(args[1]) != 13) {
        PyErr_SetString(PyExc_TypeError, "expected (lines: list[bytes], context: 13-tuple)");
        return NULL;
    }
    lines = args[0];
    PyObject *const *ctx = &PyTuple_GET_ITEM(args[1], 0);
    c.loads = ctx[0];
    c.dumps = ctx[1];
    c.dumps_option = ctx[2];
    c.blake2b = ctx[3];
    c.key_person = ctx[4];
    c.source_person = ctx[5];
    c.required = ctx[6];
    c.key_fields = ctx[7];
    c.crlf_accept = PyObject_IsTrue(ctx[8]);
    c.max_line_bytes = PyLong_AsSsize_t(ctx[9]);
    c.mark = ctx[10];
    c.mark_str = ctx[11];
    c.keep_non_finite = PyObject_IsTrue(ctx[12]);
    if (c.crlf_accept < 0 || c.keep_non_finite < 0 || (c.max_line_bytes == -1 && PyErr_Occurred())) {
        return NULL;
    }
    if (!PyTuple_Check(c.required) || !PyTuple_Check(c.key_fields) || !PyBytes_Check(c.mark)
        || !PyUnicode_Check(c.mark_str)) {
        PyErr_SetString(PyExc_TypeError, "context: required and key_fields must be tuples, mark bytes, mark_str str");
        return NULL;
    }
    Py_ssize_t count = PyList_GET_SIZE(lines);
    PyObject *prepared = PyList_New(count);
    if (prepared == NULL) {
        return NULL;
    }
    Py_ssize_t kept = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *raw = PyList_GET_ITEM(lines, i);
        PyObject *done = NULL;
        if (PyBytes_CheckExact(raw)) {
            Py_INCREF(raw);
            done = merge_line(&c, raw, &kept);
            Py_DECREF(raw);
        }
        if (done == NULL) {
            if (PyErr_Occurred()) {
                /* An exception is the line's (Python's path meets it again and answers);
                 * running out of memory, or an interrupt, is the run's. */
                if (PyErr_ExceptionMatches(PyExc_MemoryError) || !PyErr_ExceptionMatches(PyExc_Exception)) {
                    Py_DECREF(prepared);
                    return NULL;
                }
                PyErr_Clear();
            }
            done = Py_NewRef(Py_None);
        }
        PyList_SET_ITEM(prepared, i, done);
    }
    PyObject *kept_count = PyLong_FromSsize_t(kept);
    if (kept_count == NULL) {
        Py_DECREF(prepared);
        return NULL;
    }
    PyObject *result = PyTuple_Pack(2, prepared, kept_count);
    Py_DECREF(prepared);
    Py_DECREF(kept_count);
    return result;
}

static PyMethodDef bytescan_methods[] = {
    {"quote_count", (PyCFunction)quote_count, METH_O, "data.count(b'\"')."},
    {"long_integer", (PyCFunction)long_integer, METH_O,
     "True when 19+ digits follow white space, ':', ',', '[' or '-' (an integer that may not fit 64 bits)."},
    {"substitute_non_finite", (PyCFunction)(void (*)(void))substitute_non_finite, METH_FASTCALL,
     "rowparse's NaN/Infinity swap: (text, [(key, value)]) or None."},
    {"non_finite_count", (PyCFunction)non_finite_count, METH_O,
     "The NaN and infinite floats at any depth of a row's dicts and lists."},
    {"merge_rows", (PyCFunction)(void (*)(void))merge_rows, METH_FASTCALL,
     "merge_rows(lines, context) -> ([(line, result) or None per line], non-finite values kept)."},
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
    digest_name = PyUnicode_InternFromString("digest");
    source_name = PyUnicode_InternFromString("src_sha256");
    encoder_name = PyUnicode_InternFromString("encoder");
    preset_name = PyUnicode_InternFromString("preset");
    vmaf_name = PyUnicode_InternFromString("vmaf_score");
    /* Keyword names interned: orjson matches them by identity. */
    PyObject *option = PyUnicode_InternFromString("option");
    PyObject *digest_size = PyUnicode_InternFromString("digest_size");
    PyObject *person = PyUnicode_InternFromString("person");
    option_kw = option == NULL ? NULL : PyTuple_Pack(1, option);
    hash_kw = digest_size == NULL || person == NULL ? NULL : PyTuple_Pack(2, digest_size, person);
    Py_XDECREF(option);
    Py_XDECREF(digest_size);
    Py_XDECREF(person);
    sixteen = PyLong_FromLong(16);
    if (digest_name == NULL || source_name == NULL || encoder_name == NULL || preset_name == NULL
        || vmaf_name == NULL || option_kw == NULL || hash_kw == NULL || sixteen == NULL) {
        return NULL;
    }
    return PyModule_Create(&bytescan_module);
}
