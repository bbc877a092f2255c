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

TEST(MailParserTest, KeepsWinmailDatAsAnAttachment) {
  // libytnef is GPL-2+: TNEF is kept whole, not unpacked (see MailParser.hpp).
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
  static const char *kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string encoded;
  encoded.reserve(big.size() / 3 * 4 + big.size() / 57 * 2 + 8);
  for (size_t i = 0; i < big.size(); i += 3) {
    uint32_t n = uint8_t(big[i]) << 16;
    if (i + 1 < big.size()) n |= uint8_t(big[i + 1]) << 8;
    if (i + 2 < big.size()) n |= uint8_t(big[i + 2]);
    encoded += kAlphabet[(n >> 18) & 63];
    encoded += kAlphabet[(n >> 12) & 63];
    encoded += i + 1 < big.size() ? kAlphabet[(n >> 6) & 63] : '=';
    encoded += i + 2 < big.size() ? kAlphabet[n & 63] : '=';
    if ((i / 3 + 1) % 19 == 0) encoded += "\r\n";
  }
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

}  // namespace
}  // namespace connector::email
