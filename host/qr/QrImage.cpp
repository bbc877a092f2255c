#include "qr/QrImage.hpp"

#include <png.h>
#include <qrencode.h>

#include <cerrno>
#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

namespace connector::qr {
namespace {

constexpr int kQuietZone = 4;  // modules of white around the symbol, as the standard asks
constexpr int kMaxModulePx = 64;

// The encoded symbol without its quiet zone: `width` × `width` modules.
struct Symbol {
  int width = 0;
  std::vector<bool> dark;

  bool is_dark(int x, int y) const { return dark[static_cast<std::size_t>(y) * width + x]; }
};

Expected<Symbol> encode(std::string_view payload) {
  if (payload.empty()) return failure("invalid_argument", "a QR code needs a non-empty payload");
  if (payload.size() > kMaxPayloadBytes) {
    return failure("invalid_argument", "a QR payload holds at most " +
                                           std::to_string(kMaxPayloadBytes) + " bytes, got " +
                                           std::to_string(payload.size()));
  }

  // Data mode encodes the bytes as they are: 8-bit, case kept, NULs allowed. Version 0 lets
  // libqrencode pick the smallest symbol that fits.
  std::unique_ptr<QRcode, decltype(&QRcode_free)> code(
      QRcode_encodeData(static_cast<int>(payload.size()),
                        reinterpret_cast<const unsigned char *>(payload.data()), 0, QR_ECLEVEL_M),
      &QRcode_free);
  if (!code) {
    return failure("qr_failed", std::string("cannot encode the QR code: ") + std::strerror(errno));
  }

  Symbol symbol{code->width, {}};
  symbol.dark.resize(static_cast<std::size_t>(code->width) * code->width);
  for (std::size_t i = 0; i < symbol.dark.size(); ++i) symbol.dark[i] = code->data[i] & 1;
  return symbol;
}

// libpng reports errors through these. On error it must not return, and a C++ exception must
// not unwind through libpng's C frames, so the message is kept and control goes back to the
// setjmp in write_png.
struct PngErrors {
  char message[200] = "unknown error";
};

void on_png_error(png_structp png, png_const_charp message) {
  auto *errors = static_cast<PngErrors *>(png_get_error_ptr(png));
  std::snprintf(errors->message, sizeof errors->message, "%s", message);
  png_longjmp(png, 1);
}

void on_png_warning(png_structp, png_const_charp) {}

void append_png_bytes(png_structp png, png_bytep data, png_size_t length) {
  bool appended = true;
  try {
    static_cast<std::string *>(png_get_io_ptr(png))->append(reinterpret_cast<char *>(data), length);
  } catch (const std::bad_alloc &) {
    appended = false;
  }
  // Outside the try block, so the jump leaves no object of this frame behind.
  if (!appended) png_error(png, "out of memory");
}

void flush_png_bytes(png_structp) {}

// One row of 1-bit pixels (0 black, 1 white, leftmost pixel in the high bit) for module row
// `y` of the image, quiet zone included.
void fill_row(const Symbol &symbol, int y, int module_px, png_bytep row, std::size_t row_bytes) {
  std::memset(row, 0xFF, row_bytes);
  const int symbol_y = y - kQuietZone;
  if (symbol_y < 0 || symbol_y >= symbol.width) return;
  for (int x = 0; x < symbol.width; ++x) {
    if (!symbol.is_dark(x, symbol_y)) continue;
    const int first = (x + kQuietZone) * module_px;
    for (int px = first; px < first + module_px; ++px) row[px / 8] &= ~(0x80 >> (px % 8));
  }
}

// Everything that may longjmp happens in this frame, which holds nothing with a destructor; the
// caller owns the buffers and the libpng structures and releases them either way.
bool write_png(png_structp png, png_infop info, const Symbol &symbol, int module_px,
               std::vector<png_byte> &row, std::string &out) {
  if (setjmp(png_jmpbuf(png))) return false;

  const auto size = static_cast<png_uint_32>((symbol.width + 2 * kQuietZone) * module_px);
  png_set_write_fn(png, &out, append_png_bytes, flush_png_bytes);
  png_set_IHDR(png, info, size, size, 1, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  for (png_uint_32 y = 0; y < size; ++y) {
    fill_row(symbol, static_cast<int>(y) / module_px, module_px, row.data(), row.size());
    png_write_row(png, row.data());
  }
  png_write_end(png, nullptr);
  return true;
}

}  // namespace

Expected<std::string> render_png(std::string_view payload, int module_px) {
  if (module_px < 1 || module_px > kMaxModulePx) {
    return failure("invalid_argument", "a QR module is 1 to " + std::to_string(kMaxModulePx) +
                                           " pixels wide, got " + std::to_string(module_px));
  }
  auto symbol = encode(payload);
  if (!symbol) return symbol.failure();

  const std::size_t size_px = static_cast<std::size_t>(symbol->width + 2 * kQuietZone) * module_px;
  std::vector<png_byte> row((size_px + 7) / 8);
  std::string out;
  PngErrors errors;

  png_structp png =
      png_create_write_struct(PNG_LIBPNG_VER_STRING, &errors, on_png_error, on_png_warning);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  const bool written = info && write_png(png, info, *symbol, module_px, row, out);
  png_destroy_write_struct(&png, &info);  // accepts null pointers

  if (!written) {
    return failure("qr_failed", std::string("cannot write the QR code's PNG image: ") +
                                    (png || info ? errors.message : "out of memory"));
  }
  return out;
}

Expected<std::string> render_svg(std::string_view payload) {
  auto symbol = encode(payload);
  if (!symbol) return symbol.failure();

  // Each horizontal run of dark modules is one rectangle of the path: "M x y h run v1 h -run z".
  std::string path;
  for (int y = 0; y < symbol->width; ++y) {
    for (int x = 0; x < symbol->width;) {
      if (!symbol->is_dark(x, y)) {
        ++x;
        continue;
      }
      const int start = x;
      while (x < symbol->width && symbol->is_dark(x, y)) ++x;
      const std::string run = std::to_string(x - start);
      path += 'M' + std::to_string(start + kQuietZone) + ' ' + std::to_string(y + kQuietZone) +
              'h' + run + "v1h-" + run + 'z';
    }
  }

  const std::string size = std::to_string(symbol->width + 2 * kQuietZone);
  return "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 " + size + ' ' + size +
         "\" shape-rendering=\"crispEdges\"><rect width=\"" + size + "\" height=\"" + size +
         "\" fill=\"#fff\"/><path fill=\"#000\" d=\"" + path + "\"/></svg>";
}

}  // namespace connector::qr
