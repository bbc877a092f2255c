// The corpus of hard messages (corpus/, made by the project), each parsed to the right values,
// and the message events built from them.
#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <sstream>

#include "MailEvent.hpp"
#include "MailIdentity.hpp"
#include "MailParser.hpp"

namespace connector::email {
namespace {

std::string corpus(const std::string &name) {
  std::ifstream file(std::string(EMAIL_CORPUS_DIR) + "/" + name, std::ios::binary);
  EXPECT_TRUE(file.good()) << name;
  std::ostringstream content;
  content << file.rdbuf();
  return content.str();
}

ParsedMail parsed(const std::string &name) {
  auto mail = parse_mail(corpus(name));
  EXPECT_TRUE(mail.has_value()) << name;
  return mail.value_or(ParsedMail{});
}

const std::regex kCaseIds(R"(\[#(\d+)\])");

// Builds an event with an in-memory attachment store.
struct BuiltEvent {
  MessageEvent built;
  std::map<std::string, std::string> stored;
};
BuiltEvent event_of(const std::string &raw, bool headers_only = false) {
  BuiltEvent out;
  AttachmentSink sink = [&](std::string_view bytes) -> std::optional<std::string> {
    const std::string id = content_hash(std::string("id:") + std::string(bytes));
    out.stored[id] = std::string(bytes);
    return id;
  };
  ReceivedMail mail{raw, 7, 1234, raw.size(), "04-Dec-2026 12:30:00 +0000", headers_only};
  auto built = build_message_event(mail, sink, kCaseIds);
  EXPECT_TRUE(built.has_value());
  if (built) out.built = *built;
  return out;
}

TEST(MailParserTest, JoinsAnEncodedWordSplitMidCharacter) {
  auto mail = parsed("split-encoded-word.eml");
  EXPECT_EQ(mail.subject, "Atenção urgente");
  EXPECT_EQ(mail.from_name, "João");
  EXPECT_EQ(mail.from, "joao@customer.test");
}

TEST(MailParserTest, ReadsUnlabelledWindows1252Text) {
  auto mail = parsed("windows-1252-unlabelled.eml");
  EXPECT_NE(mail.text.find("Olá, não recebi a fatura de março."), std::string::npos) << mail.text;
  EXPECT_NE(mail.text.find("“errada”"), std::string::npos) << mail.text;
  EXPECT_NE(mail.text.find("€20,00"), std::string::npos) << mail.text;
}

TEST(MailParserTest, ReadsDeclaredIso88591AsWindows1252) {
  auto mail = parsed("iso-8859-1-with-euro.eml");
  EXPECT_EQ(mail.subject, "preço");
  EXPECT_NE(mail.text.find("Custa €10 – preço final."), std::string::npos) << mail.text;
}

TEST(MailParserTest, DecodesRfc2231FileNames) {
  auto mail = parsed("rfc2231-name.eml");
  ASSERT_EQ(mail.attachments.size(), 1u);
  EXPECT_EQ(mail.attachments[0].name, "Relatório anual.pdf");
  EXPECT_EQ(mail.attachments[0].mime, "application/pdf");
  EXPECT_EQ(mail.attachments[0].bytes, corpus("rfc2231-name.pdf"));
  EXPECT_EQ(mail.text, "segue");
}

// Base64 in lines of 76 characters, as mailers write it.
std::string base64_lines(const std::string &bytes) {
  static const char *kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string encoded;
  encoded.reserve(bytes.size() / 3 * 4 + bytes.size() / 57 * 2 + 8);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t n = uint8_t(bytes[i]) << 16;
    if (i + 1 < bytes.size()) n |= uint8_t(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) n |= uint8_t(bytes[i + 2]);
    encoded += kAlphabet[(n >> 18) & 63];
    encoded += kAlphabet[(n >> 12) & 63];
    encoded += i + 1 < bytes.size() ? kAlphabet[(n >> 6) & 63] : '=';
    encoded += i + 2 < bytes.size() ? kAlphabet[n & 63] : '=';
    if ((i / 3 + 1) % 19 == 0) encoded += "\r\n";
  }
  return encoded;
}

// A TNEF stream made here (layout: /usr/share/doc/tnef/file-format.txt): the version and code
// page attributes, then per file its render data, title and data, each with its checksum.
std::string tnef_archive(const std::vector<std::pair<std::string, std::string>> &files) {
  auto le = [](uint32_t value, int bytes) {
    std::string out;
    for (int i = 0; i < bytes; ++i) out += static_cast<char>((value >> (8 * i)) & 0xff);
    return out;
  };
  auto attribute = [&](uint8_t level, uint32_t id, const std::string &data) {
    uint32_t sum = 0;
    for (unsigned char c : data) sum += c;
    return std::string(1, static_cast<char>(level)) + le(id, 4) + le(data.size(), 4) + data +
           le(sum & 0xffff, 2);
  };
  std::string out = le(0x223E9F78, 4) + le(1, 2);
  out += attribute(1, 0x00089006, le(0x00010000, 4));       // attTnefVersion
  out += attribute(1, 0x00069007, le(1252, 4) + le(0, 4));  // attOemCodepage
  for (const auto &[name, bytes] : files) {
    out += attribute(2, 0x00069002, le(1, 2) + le(0xffffffff, 4) + std::string(10, '\0'));
    out += attribute(2, 0x00018010, name + std::string(1, '\0'));  // attAttachTitle
    out += attribute(2, 0x0006800F, bytes);                        // attAttachData
  }
  return out;
}

std::string mail_with_winmail(const std::string &tnef) {
  std::string raw =
      "From: outlook@customer.test\r\nSubject: from outlook\r\nMIME-Version: 1.0\r\n"
      "Content-Type: multipart/mixed; boundary=\"tt\"\r\n\r\n--tt\r\n"
      "Content-Type: text/plain\r\n\r\nsee attachment\r\n--tt\r\n"
      "Content-Type: application/ms-tnef; name=\"winmail.dat\"\r\n"
      "Content-Disposition: attachment; filename=\"winmail.dat\"\r\n"
      "Content-Transfer-Encoding: base64\r\n\r\n" +
      base64_lines(tnef) + "\r\n--tt--\r\n";
  return raw;
}

TEST(MailParserTest, UnpacksTheFilesOfWinmailDat) {
  std::string binary;
  for (int i = 0; i < 3000; ++i) binary += static_cast<char>((i * 31) % 256);
  auto mail = parse_mail(mail_with_winmail(
      tnef_archive({{"Relatorio.pdf", binary}, {"../../etc/passwd", "not a path"}})));
  ASSERT_TRUE(mail.has_value());
  EXPECT_EQ(mail->text, "see attachment");
  ASSERT_EQ(mail->attachments.size(), 2u);
  const auto &pdf =
      mail->attachments[0].name == "Relatorio.pdf" ? mail->attachments[0] : mail->attachments[1];
  const auto &other = &pdf == &mail->attachments[0] ? mail->attachments[1] : mail->attachments[0];
  EXPECT_EQ(pdf.name, "Relatorio.pdf");
  EXPECT_EQ(pdf.mime, "application/pdf");
  EXPECT_TRUE(pdf.bytes == binary);
  EXPECT_EQ(other.bytes, "not a path");
  EXPECT_EQ(other.name.find('/'), std::string::npos) << other.name;
  EXPECT_EQ(other.name.find(".."), std::string::npos) << other.name;
}

TEST(MailParserTest, KeepsAWinmailDatThatCannotBeReadWhole) {
  // corpus/tnef-winmail.eml: a TNEF signature followed by zeros, which no reader accepts.
  auto mail = parsed("tnef-winmail.eml");
  ASSERT_EQ(mail.attachments.size(), 1u);
  EXPECT_EQ(mail.attachments[0].name, "winmail.dat");
  EXPECT_EQ(mail.attachments[0].mime, "application/ms-tnef");
  EXPECT_EQ(mail.attachments[0].bytes.size(), 44u);
}

TEST(MailParserTest, AMailWithoutMessageIdGetsAContentId) {
  auto event = event_of(corpus("no-message-id.eml")).built.event;
  EXPECT_EQ(event["external_id"].get<std::string>().rfind("sha256:", 0), 0u);
  EXPECT_EQ(event["details"]["message_id"], "");
  EXPECT_EQ(event["text"], "a mail without a Message-ID");
}

// Stored ids depend on this value: SHA-256 of the mail without its trace headers and with CRLF
// as LF (a lone CR stays), whatever way it is computed.
TEST(MailParserTest, TheContentHashIsTheSha256OfTheMailWithoutTraceHeadersAndWithLf) {
  const std::string raw =
      "Received: from x\r\n  by y\r\nSubject: a\r\nX: b\r\n\r\nline1\r\nline2\r\r\nend";
  // sha256 of "Subject: a\nX: b\n\nline1\nline2\r\nend"
  EXPECT_EQ(content_hash(raw), "846332fd068169212ebbd9c01321c83feba3c86f9a3771286aa9623b12d9593e");
}

TEST(MailParserTest, AReusedMessageIdStillGivesTwoMessages) {
  const auto a = event_of(corpus("reused-message-id-a.eml")).built.event["external_id"];
  const auto b = event_of(corpus("reused-message-id-b.eml")).built.event["external_id"];
  const auto again =
      event_of(corpus("reused-message-id-a-redelivered.eml")).built.event["external_id"];
  EXPECT_NE(a, b);
  EXPECT_EQ(a, again) << "trace headers of a second delivery must not make a new message";
  EXPECT_EQ(a.get<std::string>().rfind("same@broken-mailer.test#", 0), 0u);
}

TEST(MailParserTest, ABrokenDateFallsBackToTheServersArrivalTime) {
  auto mail = parsed("broken-date.eml");
  EXPECT_FALSE(mail.date_ms.has_value());
  auto event = event_of(corpus("broken-date.eml")).built.event;
  EXPECT_EQ(event["timestamp"], internal_date_ms("04-Dec-2026 12:30:00 +0000"));
  EXPECT_EQ(event["timestamp"], int64_t{1796387400000});
  EXPECT_TRUE(event["details"].value("date_unreadable", false));
}

TEST(MailParserTest, ReadsAGoodDate) {
  auto mail = parsed("split-encoded-word.eml");
  ASSERT_TRUE(mail.date_ms.has_value());
  EXPECT_EQ(*mail.date_ms, int64_t{1796389200000});  // 10:00 -03:00 is 13:00 UTC
}

TEST(MailParserTest, DecodesEmojiSubjects) {
  EXPECT_EQ(parsed("emoji-subject.eml").subject, "😀 Obrigado! 🎉");
}

TEST(MailParserTest, SanitisesHostileAttachmentNames) {
  auto mail = parsed("path-traversal-names.eml");
  ASSERT_EQ(mail.attachments.size(), 4u);
  for (const auto &a : mail.attachments) {
    EXPECT_EQ(a.name.find('/'), std::string::npos) << a.name;
    EXPECT_EQ(a.name.find('\\'), std::string::npos) << a.name;
    EXPECT_EQ(a.name.find(".."), std::string::npos) << a.name;
    for (unsigned char c : a.name) EXPECT_GE(c, 0x20) << a.name;
    EXPECT_LE(a.name.size(), 120u);
    EXPECT_FALSE(a.name.empty());
  }
  EXPECT_EQ(mail.attachments[0].bytes, "root");
  EXPECT_EQ(mail.attachments[3].name.substr(mail.attachments[3].name.size() - 4), ".txt");
}

TEST(MailParserTest, SanitizeKeepsOrdinaryNamesAndCutsOnCharacterBoundaries) {
  EXPECT_EQ(sanitize_file_name("Relatório final.pdf"), "Relatório final.pdf");
  EXPECT_EQ(sanitize_file_name("a/b\\c"), "a_b_c");
  const std::string cut =
      sanitize_file_name(std::string(100, 'x') + "ção" + std::string(50, 'y') + ".pdf", 105);
  EXPECT_LE(cut.size(), 105u);
  EXPECT_EQ(cut.substr(cut.size() - 4), ".pdf");
  EXPECT_EQ(to_utf8(cut, "utf-8"), cut);  // still valid UTF-8
}

TEST(MailParserTest, KeepsAForwardedMailWhenItIsTheOnlyBody) {
  auto mail = parsed("forwarded-only.eml");
  EXPECT_EQ(mail.text, "");
  ASSERT_EQ(mail.attachments.size(), 1u);
  EXPECT_EQ(mail.attachments[0].mime, "message/rfc822");
  EXPECT_EQ(mail.attachments[0].name, "the original.eml");
  EXPECT_NE(mail.attachments[0].bytes.find("original text"), std::string::npos);
  auto inner = parse_mail(mail.attachments[0].bytes);
  ASSERT_TRUE(inner.has_value());
  EXPECT_EQ(inner->message_id, "orig-1@supplier.test");
}

TEST(MailParserTest, MalformedMimeIsReadAsFarAsPossible) {
  auto mail = parsed("malformed-mime.eml");
  EXPECT_EQ(mail.subject, "broken structure");
  EXPECT_EQ(mail.message_id, "broken-1@customer.test");
}

TEST(MailParserTest, BytesThatAreNoMailAreQuarantined) {
  EXPECT_FALSE(parse_mail(corpus("not-a-mail.bin")).has_value());
  auto built = event_of(corpus("not-a-mail.bin"));
  EXPECT_TRUE(built.built.quarantined);
  const auto &event = built.built.event;
  EXPECT_TRUE(event["details"].value("quarantined", false));
  EXPECT_TRUE(event.value("automatic", false));
  // The raw bytes are still kept.
  EXPECT_EQ(built.stored[event["details"].value("raw_attachment_id", "")],
            corpus("not-a-mail.bin"));
}

TEST(MailParserTest, RecognisesAutoRepliesAndKeepsThreadOrder) {
  auto mail = parsed("auto-reply.eml");
  EXPECT_TRUE(mail.automatic);
  EXPECT_EQ(mail.automatic_reason, "Auto-Submitted");
  EXPECT_EQ(mail.thread_refs,
            (std::vector<std::string>{"ours-2@example.test", "ours-1@example.test"}));
  auto event = event_of(corpus("auto-reply.eml")).built.event;
  EXPECT_EQ(event["link"]["subject_case_ids"], nlohmann::json::array({"77"}));
  EXPECT_TRUE(event.value("automatic", false));
}

TEST(MailParserTest, RecognisesBounces) {
  auto mail = parsed("bounce.eml");
  EXPECT_TRUE(mail.automatic);
  EXPECT_FALSE(parsed("rfc2231-name.eml").automatic);
}

TEST(MailParserTest, RecognisesEveryKindOfAutomaticMail) {
  // The headers of notes/email.md, each alone on an otherwise ordinary mail.
  const std::pair<const char *, const char *> kCases[] = {
      {"Auto-Submitted: auto-generated\r\n", "Auto-Submitted"},
      {"X-Autoreply: yes\r\n", "X-Autoreply"},
      {"X-Autorespond: yes\r\n", "X-Autorespond"},
      {"Precedence: bulk\r\n", "Precedence"},
      {"Precedence: junk\r\n", "Precedence"},
      {"Precedence: list\r\n", "Precedence"},
      {"Precedence: auto_reply\r\n", "Precedence"},
      {"X-Loop: helpdesk@example.test\r\n", "X-Loop"},
      {"X-Auto-Response-Suppress: All\r\n", "X-Auto-Response-Suppress"},
      {"List-Id: <news.customer.test>\r\n", "List-Id"},
      {"Return-Path: <>\r\n", "empty Return-Path"}};
  const std::string rest =
      "From: someone@customer.test\r\nSubject: hello\r\nMessage-ID: "
      "<x@customer.test>\r\n\r\nhi\r\n";
  for (const auto &[header, reason] : kCases) {
    auto mail = parse_mail(header + rest);
    ASSERT_TRUE(mail.has_value()) << header;
    EXPECT_TRUE(mail->automatic) << header;
    EXPECT_EQ(mail->automatic_reason, reason) << header;
  }
  for (const char *sender : {"MAILER-DAEMON@mx.customer.test", "postmaster@customer.test"}) {
    auto mail = parse_mail(std::string("From: ") + sender + "\r\nSubject: x\r\n\r\nhi\r\n");
    ASSERT_TRUE(mail.has_value());
    EXPECT_TRUE(mail->automatic) << sender;
  }
  auto report = parse_mail(
      "From: relay@customer.test\r\nSubject: delivery\r\nMIME-Version: 1.0\r\n"
      "Content-Type: multipart/report; report-type=delivery-status; boundary=\"rr\"\r\n\r\n"
      "--rr\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--rr--\r\n");
  ASSERT_TRUE(report.has_value());
  EXPECT_EQ(report->automatic_reason, "multipart/report");
  // A person's ordinary mail, and the explicit "no", are not automatic.
  for (const char *header : {"", "Auto-Submitted: no\r\n", "Precedence: first-class\r\n"}) {
    auto mail = parse_mail(header + rest);
    ASSERT_TRUE(mail.has_value());
    EXPECT_FALSE(mail->automatic) << header << mail->automatic_reason;
  }
}

TEST(MailParserTest, KeepsTextHtmlAndInlineImages) {
  auto built = event_of(corpus("html-with-inline-image.eml"));
  const auto &event = built.built.event;
  EXPECT_EQ(event["text"], "see picture");
  EXPECT_NE(event["html"].get<std::string>().find("cid:logo@customer.test"), std::string::npos);
  ASSERT_EQ(event["attachments"].size(), 1u);
  EXPECT_EQ(event["attachments"][0]["content_id"], "logo@customer.test");
  EXPECT_EQ(event["attachments"][0]["mime"], "image/png");
  EXPECT_EQ(built.stored[event["attachments"][0]["id"]], std::string("\x89PNG\r\n\x1a\n", 8));
}

TEST(MailParserTest, ThirtyMegabyteAttachmentSurvivesIntact) {
  std::string big(30u << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 2654435761u) >> 13);
  const std::string encoded = base64_lines(big);
  const std::string raw =
      "From: a@customer.test\r\nSubject: big\r\nMIME-Version: 1.0\r\n"
      "Content-Type: multipart/mixed; boundary=\"bb\"\r\n\r\n--bb\r\nContent-Type: "
      "text/plain\r\n\r\n"
      "big one\r\n--bb\r\nContent-Type: application/octet-stream\r\n"
      "Content-Disposition: attachment; filename=\"big.bin\"\r\n"
      "Content-Transfer-Encoding: base64\r\n\r\n" +
      encoded + "\r\n--bb--\r\n";
  auto mail = parse_mail(raw);
  ASSERT_TRUE(mail.has_value());
  ASSERT_EQ(mail->attachments.size(), 1u);
  EXPECT_EQ(mail->attachments[0].bytes.size(), big.size());
  EXPECT_TRUE(mail->attachments[0].bytes == big);
}

TEST(MailParserTest, OversizedMailIsRecordedFromItsHeaders) {
  const std::string head =
      "From: a@customer.test\r\nSubject: too big [#9]\r\nMessage-ID: <big@x>\r\n";
  auto built = event_of(head, true);
  const auto &event = built.built.event;
  EXPECT_FALSE(built.built.quarantined);
  EXPECT_EQ(event["subject"], "too big [#9]");
  EXPECT_TRUE(event["details"].value("oversized", false));
  EXPECT_EQ(event["link"]["subject_case_ids"], nlohmann::json::array({"9"}));
}

TEST(MailParserTest, DecodedHeaderValuesHoldNoLineBreaksOrControlCharacters) {
  // corpus/encoded-line-breaks.eml: encoded words that decode to CR LF in the subject and in the
  // sender's name.
  auto mail = parsed("encoded-line-breaks.eml");
  EXPECT_EQ(mail.subject, "hi X-Inj: 1");
  EXPECT_EQ(mail.from_name, "Eve Bcc: victim@example.test");
  EXPECT_EQ(mail.from, "eve@customer.test");
  auto event = event_of(corpus("encoded-line-breaks.eml")).built.event;
  EXPECT_EQ(event["subject"], "hi X-Inj: 1");
  EXPECT_EQ(event["details"]["from_name"], "Eve Bcc: victim@example.test");

  // Tabs, other C0 characters, DEL and C1 characters become one space each run.
  const std::string raw =
      "From: =?utf-8?q?A=09=01B=7F=C2=85C?= <a@customer.test>\r\n"
      "Subject: =?utf-8?q?one=09=09two=01=1Fthree_=0D=0A__four?=\r\n\r\nbody\r\n";
  auto controls = parse_mail(raw);
  ASSERT_TRUE(controls.has_value());
  EXPECT_EQ(controls->subject, "one two three four");
  EXPECT_EQ(controls->from_name, "A B C");
}

TEST(MailParserTest, AttachmentNamesLoseBidiControls) {
  // corpus/bidi-file-name.eml: "invoice<U+202E>gpj.exe", shown as "invoiceexe.jpg", and a name
  // with every bidi control, one of them between two dots.
  auto mail = parsed("bidi-file-name.eml");
  ASSERT_EQ(mail.attachments.size(), 2u);
  EXPECT_EQ(mail.attachments[0].name, "invoicegpj.exe");
  EXPECT_EQ(mail.attachments[1].name, "ab_txt");
  EXPECT_EQ(sanitize_file_name("photo\u202Egnp.scr"), "photognp.scr");
  EXPECT_EQ(sanitize_file_name("\u2067x\u2069.pdf"), "x.pdf");
  EXPECT_EQ(sanitize_file_name("Relatório.pdf"), "Relatório.pdf");
}

// A mail whose only text lies `levels` multiparts deep.
std::string nested_mail(int levels) {
  std::string raw = "From: a@customer.test\r\nSubject: deep\r\nMessage-ID: <deep@customer.test>\r\n"
                    "MIME-Version: 1.0\r\n";
  for (int i = 0; i < levels; ++i) {
    raw += "Content-Type: multipart/mixed; boundary=\"b" + std::to_string(i) + "\"\r\n\r\n--b" +
           std::to_string(i) + "\r\n";
  }
  raw += "Content-Type: text/plain\r\n\r\ndeep text\r\n";
  for (int i = levels - 1; i >= 0; --i) raw += "--b" + std::to_string(i) + "--\r\n";
  return raw;
}

TEST(MailParserTest, ContentNestedTooDeepIsMarkedNotDroppedSilently) {
  for (int levels : {40, 2000}) {
    const std::string raw = nested_mail(levels);
    auto mail = parse_mail(raw);
    ASSERT_TRUE(mail.has_value()) << levels;
    EXPECT_EQ(mail->truncated, "mime nesting deeper than 32 levels") << levels;
    auto built = event_of(raw);
    const auto &event = built.built.event;
    EXPECT_FALSE(built.built.quarantined);
    EXPECT_EQ(event["details"].value("truncated", ""), "mime nesting deeper than 32 levels");
    EXPECT_NE(event.value("text", "").find("mime nesting deeper than 32 levels"),
              std::string::npos)
        << event.value("text", "");
    EXPECT_EQ(built.stored[event["details"].value("raw_attachment_id", "")], raw);
  }
  // Within the limit nothing is marked and the text is read.
  auto shallow = parse_mail(nested_mail(20));
  ASSERT_TRUE(shallow.has_value());
  EXPECT_EQ(shallow->truncated, "");
  EXPECT_EQ(shallow->text, "deep text");
  EXPECT_FALSE(event_of(nested_mail(20)).built.event["details"].contains("truncated"));
}

}  // namespace
}  // namespace connector::email
