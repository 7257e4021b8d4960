// A round's metrics rows as JSON lines, written from their columns (swapjax/rows_text.py).
//
// Each line is the same text Python's json.dumps gives the row's dict: the round's opening, the
// run's fixed fields (their text made once per study), then per metric its key and its value,
// then the closing. A float is written as Python's repr writes it (the shortest digits that read
// back as the same double; fixed notation from 1e-4 up to 1e16, else an exponent of at least two
// digits); NaN and Inf as null. Any other value comes as its text, made in Python.

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace {

// The columns of one program's runs. A float column (kind 0) is `n` doubles; a text column
// (kind 1) is its values' texts one after another, value i from offsets[i] to offsets[i + 1] - 1
// (a separator ends each value).
struct Block {
  int64_t n;
  const char* heads;
  const int64_t* head_offsets;  // n + 1: run i's fixed fields are heads[offsets[i]:offsets[i+1]]
  int64_t columns;
  const char* const* keys;  // per column: `, "name": `
  const int64_t* key_lengths;
  const int32_t* kinds;
  const void* const* data;
  const int64_t* const* offsets;  // per text column: n + 1 (float columns: unused)
};

char* put(char* p, const char* text, int64_t length) {
  std::memcpy(p, text, length);
  return p + length;
}

// `v` (finite) as Python's repr(float) writes it.
char* put_float(char* p, double v) {
  char buf[48];
  auto done = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  const char* q = buf;
  if (*q == '-') *p++ = *q++;
  char digits[24];
  int n = 0;
  for (; q < done.ptr && *q != 'e'; ++q) {
    if (*q != '.') digits[n++] = *q;
  }
  bool negative = q[1] == '-';  // q: "e+07", "e-308"
  int exponent = 0;
  for (q += 2; q < done.ptr; ++q) exponent = exponent * 10 + (*q - '0');
  if (negative) exponent = -exponent;
  int point = exponent + 1;  // digits before the decimal point
  if (point <= -4 || point > 16) {
    *p++ = digits[0];
    if (n > 1) {
      *p++ = '.';
      p = put(p, digits + 1, n - 1);
    }
    *p++ = 'e';
    *p++ = exponent < 0 ? '-' : '+';
    int e = exponent < 0 ? -exponent : exponent;
    if (e < 10) *p++ = '0';
    return std::to_chars(p, p + 4, e).ptr;
  }
  if (point <= 0) {  // 0.000ddd
    *p++ = '0';
    *p++ = '.';
    std::memset(p, '0', -point);
    return put(p - point, digits, n);
  }
  if (point < n) {  // dd.ddd
    p = put(p, digits, point);
    *p++ = '.';
    return put(p, digits + point, n - point);
  }
  p = put(p, digits, n);  // ddd00.0
  std::memset(p, '0', point - n);
  p += point - n;
  *p++ = '.';
  *p++ = '0';
  return p;
}

}  // namespace

extern "C" {

// Writes `rows` lines, line k from run row_index[k] of block row_block[k], into `out` (the caller
// sizes it: 24 bytes hold any float's text); returns the bytes written.
int64_t swapjax_rows_text(const char* start, int64_t start_length, const char* end,
                          int64_t end_length, const Block* blocks, int64_t rows,
                          const int32_t* row_block, const int64_t* row_index, char* out) {
  char* p = out;
  for (int64_t k = 0; k < rows; ++k) {
    const Block& b = blocks[row_block[k]];
    int64_t i = row_index[k];
    p = put(p, start, start_length);
    p = put(p, b.heads + b.head_offsets[i], b.head_offsets[i + 1] - b.head_offsets[i]);
    for (int64_t c = 0; c < b.columns; ++c) {
      p = put(p, b.keys[c], b.key_lengths[c]);
      if (b.kinds[c] == 0) {
        double v = static_cast<const double*>(b.data[c])[i];
        p = std::isfinite(v) ? put_float(p, v) : put(p, "null", 4);
      } else {
        const int64_t* at = b.offsets[c];
        p = put(p, static_cast<const char*>(b.data[c]) + at[i], at[i + 1] - at[i] - 1);
      }
    }
    p = put(p, end, end_length);
  }
  return p - out;
}

// repr(v) for a finite `v`, as the rows write it (for tests); returns its length.
int64_t swapjax_float_text(double v, char* out) { return put_float(out, v) - out; }
}
