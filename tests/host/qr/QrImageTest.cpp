#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <memory>

#include "TempDir.hpp"
#include "qr/QrImage.hpp"

namespace connector::qr {
namespace {

namespace fs = std::filesystem;

// A pairing string shaped like WhatsApp's: a reference and three base64 keys, ~250 characters.
const std::string kWhatsAppLike =
    "2@Xq3Lr0pKz8VbN1mYcT7hGdEwQs5aUf2jRiOo9lPnMkJb6vHx4yZtCe/gW+uSLA1dFr8qKpN3mYtB0wVe"
    "Tn4Ks9Pd2Rg7Lx0Yv5Bh1Qj8Mc6Wf3A==,"
    "bZ2uQm5x9RkLw3TfHj8GcVn1pYs6oDaE0iKr4tWq7XI=,"
    "Lh6vNs2QpXz9TcRm1kYjB8uGdWf3eAo5iHn0rVt4yPU=,"
    "y7Kc3NqP0sRb6mZx1wTf9LhGd2jVe5oUa8iXr4nQtBk=";

// Runs `command` and returns what it printed on stdout.
std::string run(const std::string &command) {
  std::unique_ptr<FILE, int (*)(FILE *)> pipe(popen(command.c_str(), "r"), pclose);
  if (!pipe) return {};
  std::string out;
  std::array<char, 4096> buffer;
  while (std::size_t n = std::fread(buffer.data(), 1, buffer.size(), pipe.get())) {
    out.append(buffer.data(), n);
  }
  return out;
}

// What zbarimg reads from the image file, without the newline it adds.
std::string scan(const fs::path &image) {
  std::string text = run("zbarimg --quiet --raw --nodbus '" + image.string() + "' 2>/dev/null");
  if (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

std::string scan_png(const std::string &png) {
  test::TempDir dir;
  return scan(dir.write("code.png", png));
}

// Renders the SVG to a PNG with rsvg-convert (Debian's librsvg2-bin) and scans that.
std::string scan_svg(const std::string &svg) {
  test::TempDir dir;
  const fs::path source = dir.write("code.svg", svg);
  const fs::path image = dir / "code.png";
  const std::string command =
      "rsvg-convert -w 400 -h 400 -o '" + image.string() + "' '" + source.string() + "' 2>&1";
  const std::string output = run(command);
  EXPECT_TRUE(fs::exists(image)) << command << ": " << output;
  return scan(image);
}

TEST(QrImage, PngOfAWhatsAppPairingStringScansBack) {
  ASSERT_EQ(kWhatsAppLike.size(), 250u);
  auto png = render_png(kWhatsAppLike);
  ASSERT_TRUE(png) << png.failure().message;
  EXPECT_EQ(png->substr(0, 8), "\x89PNG\r\n\x1a\n");
  EXPECT_EQ(scan_png(*png), kWhatsAppLike);
}

TEST(QrImage, PngOfAShortPayloadScansBack) {
  auto png = render_png("Hello, World");
  ASSERT_TRUE(png) << png.failure().message;
  EXPECT_EQ(scan_png(*png), "Hello, World");
}

TEST(QrImage, PngHasTheQuietZoneAndModuleSize) {
  // "a" fits version 1: 21 modules, plus 4 on each side, at 3 pixels a module.
  auto png = render_png("a", 3);
  ASSERT_TRUE(png) << png.failure().message;
  ASSERT_GE(png->size(), 24u);
  const auto be32 = [&](std::size_t at) {
    const auto *p = reinterpret_cast<const unsigned char *>(png->data() + at);
    return (p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3];
  };
  EXPECT_EQ(png->substr(12, 4), "IHDR");
  EXPECT_EQ(be32(16), (21 + 8) * 3);  // width
  EXPECT_EQ(be32(20), (21 + 8) * 3);  // height
  EXPECT_EQ(scan_png(*png), "a");
}

TEST(QrImage, PngOfTheLongestPayloadScansBack) {
  std::string payload(kMaxPayloadBytes, 'x');
  for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = "AbCdEf0123/+=,"[i % 14];
  auto png = render_png(payload, 4);
  ASSERT_TRUE(png) << png.failure().message;
  EXPECT_EQ(scan_png(*png), payload);
}

TEST(QrImage, SvgOfAWhatsAppPairingStringScansBack) {
  auto svg = render_svg(kWhatsAppLike);
  ASSERT_TRUE(svg) << svg.failure().message;
  EXPECT_EQ(scan_svg(*svg), kWhatsAppLike);
}

TEST(QrImage, SvgOfAShortPayloadScansBack) {
  auto svg = render_svg("https://connector.example.com/login/AbC123");
  ASSERT_TRUE(svg) << svg.failure().message;
  EXPECT_EQ(scan_svg(*svg), "https://connector.example.com/login/AbC123");
}

TEST(QrImage, SvgIsOnePathInModuleUnits) {
  auto svg = render_svg("a");
  ASSERT_TRUE(svg) << svg.failure().message;
  EXPECT_NE(svg->find("viewBox=\"0 0 29 29\""), std::string::npos) << *svg;
  EXPECT_NE(svg->find("shape-rendering=\"crispEdges\""), std::string::npos);
  EXPECT_EQ(svg->find("<path"), svg->rfind("<path"));
  // The finder pattern's top row starts after the quiet zone: seven dark modules.
  EXPECT_NE(svg->find("d=\"M4 4h7v1h-7z"), std::string::npos) << *svg;
}

TEST(QrImage, RefusesAnEmptyPayload) {
  for (const auto &result : {render_png(""), render_svg("")}) {
    ASSERT_FALSE(result);
    EXPECT_EQ(result.failure().code, "invalid_argument");
    EXPECT_EQ(result.failure().message, "a QR code needs a non-empty payload");
  }
}

TEST(QrImage, RefusesAnOversizedPayload) {
  const std::string payload(kMaxPayloadBytes + 1, 'x');
  for (const auto &result : {render_png(payload), render_svg(payload)}) {
    ASSERT_FALSE(result);
    EXPECT_EQ(result.failure().code, "invalid_argument");
    EXPECT_EQ(result.failure().message, "a QR payload holds at most 2048 bytes, got 2049");
  }
}

TEST(QrImage, RefusesABadModuleSize) {
  auto png = render_png("a", 0);
  ASSERT_FALSE(png);
  EXPECT_EQ(png.failure().code, "invalid_argument");
  EXPECT_EQ(png.failure().message, "a QR module is 1 to 64 pixels wide, got 0");
}

}  // namespace
}  // namespace connector::qr
