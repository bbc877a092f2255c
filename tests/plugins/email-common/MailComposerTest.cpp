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

}  // namespace
}  // namespace connector::email
