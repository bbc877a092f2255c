// Outgoing mail: threading headers, refused line breaks, a round trip through the parser.
#include <gtest/gtest.h>

#include "MailComposer.hpp"
#include "MailParser.hpp"

namespace connector::email {
namespace {

TEST(MailComposerTest, WritesThreadingHeadersAndAFreshMessageId) {
  OutgoingMail mail;
  mail.from = "agent@example.test";
  mail.to = {"customer@customer.test"};
  mail.subject = "Re: [#12] Pedido não chegou";
  mail.text = "Enviado hoje.";
  mail.html = "<p>Enviado hoje.</p>";
  mail.in_reply_to = "<q2@customer.test>";
  mail.references = {"q1@customer.test", "<q2@customer.test>"};
  auto composed = compose_mail(mail);
  ASSERT_TRUE(std::holds_alternative<ComposedMail>(composed));
  const auto &ready = std::get<ComposedMail>(composed);
  EXPECT_NE(ready.message_id.find("@example.test"), std::string::npos);

  auto back = parse_mail(ready.bytes);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->message_id, ready.message_id);
  EXPECT_EQ(back->subject, mail.subject);
  EXPECT_EQ(back->text, "Enviado hoje.");
  EXPECT_EQ(back->html, "<p>Enviado hoje.</p>");
  EXPECT_EQ(back->thread_refs, (std::vector<std::string>{"q2@customer.test", "q1@customer.test"}));
  EXPECT_FALSE(back->automatic);
}

TEST(MailComposerTest, AutomaticMailMarksItself) {
  OutgoingMail mail{"agent@example.test", {"c@customer.test"}, {}, "Recebido", "ok"};
  mail.automatic = true;
  auto composed = compose_mail(mail);
  ASSERT_TRUE(std::holds_alternative<ComposedMail>(composed));
  auto back = parse_mail(std::get<ComposedMail>(composed).bytes);
  ASSERT_TRUE(back.has_value());
  EXPECT_TRUE(back->automatic);
}

TEST(MailComposerTest, RefusesLineBreaksInHeaderValues) {
  OutgoingMail mail{"agent@example.test", {"c@customer.test"}, {}, "hi\r\nBcc: x@evil.test", "t"};
  EXPECT_TRUE(std::holds_alternative<std::string>(compose_mail(mail)));
  mail.subject = "fine";
  mail.to = {"c@customer.test\nBcc: x@evil.test"};
  EXPECT_TRUE(std::holds_alternative<std::string>(compose_mail(mail)));
  mail.to = {"c@customer.test"};
  mail.in_reply_to = "<a@b>\r\nX-Injected: 1";
  EXPECT_TRUE(std::holds_alternative<std::string>(compose_mail(mail)));
}

std::string refusal(const OutgoingMail &mail) {
  auto composed = compose_mail(mail);
  return std::holds_alternative<std::string>(composed) ? std::get<std::string>(composed)
                                                       : "(composed)";
}

TEST(MailComposerTest, SaysAControlCharacterIsNoLineBreak) {
  using namespace std::string_literals;
  OutgoingMail mail{"agent@example.test", {"c@customer.test"}, {}, "hi\0there"s, "t"};
  EXPECT_EQ(refusal(mail), "the subject contains a control character");
  mail.subject = "hi\x01there";
  EXPECT_EQ(refusal(mail), "the subject contains a control character");
  mail.subject = "hi\rthere";
  EXPECT_EQ(refusal(mail), "the subject contains a line break");
  mail.subject = "tab\tis fine";
  mail.to = {"c@customer.test\0x"s};
  EXPECT_EQ(refusal(mail), "the to recipient is refused: it contains a control character");
  mail.to = {"c@customer.test"};
  mail.cc = {"d@customer.test\nBcc: x@evil.test"};
  EXPECT_EQ(refusal(mail), "the cc recipient is refused: it contains a line break");
  mail.cc = {};
  EXPECT_TRUE(std::holds_alternative<ComposedMail>(compose_mail(mail)));

  auto listed = read_recipients("a@customer.test, b@customer\0.test"s, "bcc");
  ASSERT_TRUE(std::holds_alternative<std::string>(listed));
  EXPECT_EQ(std::get<std::string>(listed),
            "recipient 2 of \"bcc\" is not one plain address (local@domain) or Name <address>: it "
            "contains a control character");
}

std::string refused_recipient(const std::string &entry) {
  auto read = parse_recipient(entry);
  return std::holds_alternative<std::string>(read) ? std::get<std::string>(read) : "";
}

TEST(MailComposerTest, ARecipientIsOnePlainAddressOrNameAndAddress) {
  // SMTP parameters smuggled onto the envelope through a recipient.
  auto injected = read_recipients(
      "colleague@example.test> NOTIFY=NEVER ORCPT=rfc822;colleague@example.test", "to");
  ASSERT_TRUE(std::holds_alternative<std::string>(injected));
  EXPECT_NE(std::get<std::string>(injected).find("of \"to\""), std::string::npos)
      << std::get<std::string>(injected);
  EXPECT_NE(refused_recipient("a@b.test NOTIFY=NEVER"), "");
  EXPECT_NE(refused_recipient("Ann <a@b.test> NOTIFY=NEVER"), "");
  EXPECT_NE(refused_recipient("Ann <a@b.test NOTIFY=NEVER>"), "");
  EXPECT_NE(refused_recipient("Ann <a@b.test>> x"), "");
  EXPECT_NE(refused_recipient("<<a@b.test>>"), "");
  EXPECT_NE(refused_recipient("a@b.test>"), "");
  EXPECT_NE(refused_recipient("\"a b\"@b.test"), "");
  EXPECT_NE(refused_recipient("\"Ann\" <a@b.test>"), "");
  EXPECT_NE(refused_recipient("a@b@c.test"), "");
  EXPECT_NE(refused_recipient("ab.test"), "");
  EXPECT_NE(refused_recipient("a@"), "");
  EXPECT_NE(refused_recipient("@b.test"), "");
  EXPECT_NE(refused_recipient("a..b@c.test"), "");
  EXPECT_NE(refused_recipient("a@b.test;x"), "");
  EXPECT_NE(refused_recipient("a@[127.0.0.1]"), "");
  EXPECT_NE(refused_recipient("a(c)@b.test"), "");
  EXPECT_NE(refused_recipient("a\x7f@b.test"), "");
  EXPECT_NE(refused_recipient("Ann\x01 <a@b.test>"), "");
  EXPECT_NE(refused_recipient("Ann <>"), "");
  EXPECT_EQ(refused_recipient("Ann <a@b.test> NOTIFY=NEVER"),
            "it contains '<' or '>' outside of Name <address>");

  auto read = read_recipients(
      " a@b.test , Ann Lee <ann.lee+x@b-c.test>,, <o'neil@b.test>,"
      "João <joão@exemplo.test>",
      "to");
  ASSERT_TRUE(std::holds_alternative<std::vector<Recipient>>(read)) << std::get<std::string>(read);
  const auto &list = std::get<std::vector<Recipient>>(read);
  ASSERT_EQ(list.size(), 4u);
  EXPECT_EQ(list[0].address, "a@b.test");
  EXPECT_EQ(list[0].text(), "a@b.test");
  EXPECT_EQ(list[1].name, "Ann Lee");
  EXPECT_EQ(list[1].address, "ann.lee+x@b-c.test");
  EXPECT_EQ(list[1].text(), "Ann Lee <ann.lee+x@b-c.test>");
  EXPECT_EQ(list[2].name, "");
  EXPECT_EQ(list[2].address, "o'neil@b.test");
  EXPECT_EQ(list[3].name, "João");

  // A named recipient reaches the header with its name and address apart.
  OutgoingMail mail{
      "agent@example.test", {"Ann Lee <ann@customer.test>"}, {"João <j@customer.test>"}, "hi", "t"};
  auto composed = compose_mail(mail);
  ASSERT_TRUE(std::holds_alternative<ComposedMail>(composed));
  auto back = parse_mail(std::get<ComposedMail>(composed).bytes);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->to, (std::vector<std::string>{"ann@customer.test"}));
  EXPECT_EQ(back->cc, (std::vector<std::string>{"j@customer.test"}));
}

}  // namespace
}  // namespace connector::email
