// QR code images for login and pairing screens (a WhatsApp pairing string, a login link).
//
// Both renderers encode the payload byte for byte (8-bit mode, case kept) at error correction
// level M, and surround the symbol with the 4-module quiet zone that scanners need. They are
// pure functions: safe to call from any thread.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/Expected.hpp"

namespace connector::qr {

// The longest payload accepted, in bytes. WhatsApp's pairing strings are about 250.
inline constexpr std::size_t kMaxPayloadBytes = 2048;

// A PNG image (the file's bytes), black on white, each module `module_px` pixels square
// (1 to 64). Failures: "invalid_argument" for an empty or too long payload or a bad module size,
// "qr_failed" when the image cannot be produced.
Expected<std::string> render_png(std::string_view payload, int module_px = 8);

// An SVG document whose viewBox counts modules (quiet zone included): one black path on a white
// rectangle, with shape-rendering="crispEdges", so it scales to any size. Same failures as
// render_png.
Expected<std::string> render_svg(std::string_view payload);

}  // namespace connector::qr
