#include <gtest/gtest.h>

#include "cases/Identities.hpp"
#include "cases/SubjectIds.hpp"

namespace connector::cases {
namespace {

std::string phone_of(const IdentityReader &reader, const std::string &raw) {
  auto identity = reader.phone(raw);
  return identity ? identity->value : "(none)";
}

TEST(Identities, PhonesBecomeE164InTheDefaultRegion) {
  IdentityReader reader("BR", true);
  EXPECT_EQ(phone_of(reader, "+55 11 98765-4321"), "+5511987654321");
  EXPECT_EQ(phone_of(reader, "(11) 98765-4321"), "+5511987654321");
  EXPECT_EQ(phone_of(reader, "+351 912 345 678"), "+351912345678");
  EXPECT_EQ(phone_of(reader, "not a phone"), "(none)");

  IdentityReader portugal("PT", true);
  EXPECT_EQ(phone_of(portugal, "912 345 678"), "+351912345678");
}

TEST(Identities, BrazilianMobilesGainTheNinthDigitAndLandlinesDoNot) {
  EXPECT_EQ(with_brazilian_ninth_digit("+551187654321"), "+5511987654321");
  EXPECT_EQ(with_brazilian_ninth_digit("+5511987654321"), "+5511987654321");
  EXPECT_EQ(with_brazilian_ninth_digit("+551133334444"), "+551133334444");  // landline
  EXPECT_EQ(with_brazilian_ninth_digit("+351912345678"), "+351912345678");  // not Brazil

  IdentityReader reader("BR", true);
  EXPECT_EQ(phone_of(reader, "(11) 8765-4321"), "+5511987654321");
  EXPECT_EQ(phone_of(reader, "(11) 3333-4444"), "+551133334444");
}

TEST(Identities, WhatsAppIdsArePhonesOrLids) {
  IdentityReader reader("BR", true);
  auto phone = reader.whatsapp_id("551187654321:7@s.whatsapp.net");
  ASSERT_TRUE(phone);
  EXPECT_EQ(phone->kind, "phone");
  EXPECT_EQ(phone->value, "+5511987654321");

  auto legacy = reader.whatsapp_id("5511987654321@c.us");
  ASSERT_TRUE(legacy);
  EXPECT_EQ(legacy->value, "+5511987654321");

  auto lid = reader.whatsapp_id("201234567890123:3@lid");
  ASSERT_TRUE(lid);
  EXPECT_EQ(lid->kind, "whatsapp");
  EXPECT_EQ(lid->value, "201234567890123@lid");

  EXPECT_FALSE(reader.whatsapp_id("120363000000000000@g.us"));
  EXPECT_FALSE(reader.whatsapp_id("status@broadcast"));
}

TEST(Identities, PlusAndDigitsThatNameNoRealNumberAreNotPhones) {
  IdentityReader reader("BR", true);
  EXPECT_EQ(phone_of(reader, "+0000000"), "(none)") << "no country code 0";
  EXPECT_EQ(phone_of(reader, "+99999999999999"), "(none)") << "no country code 999";
  EXPECT_EQ(phone_of(reader, "+5511"), "(none)");
  EXPECT_EQ(phone_of(reader, "+551198765432109"), "(none)") << "too long for Brazil";
  EXPECT_EQ(phone_of(reader, std::string("+55119876\0" "54321", 15)), "(none)");
  EXPECT_EQ(phone_of(reader, "+5511987654321"), "+5511987654321");
  EXPECT_EQ(phone_of(reader, "+351912345678"), "+351912345678");
  EXPECT_EQ(phone_of(reader, "+551187654321"), "+5511987654321") << "old eight-digit mobile";
  EXPECT_EQ(phone_of(reader, "+390612345678"), "+390612345678") << "Italy keeps its leading 0";
  EXPECT_EQ(phone_of(reader, "+14155552671"), "+14155552671");
  EXPECT_EQ(phone_of(reader, "+1415555267"), "(none)") << "too short for +1";
  EXPECT_EQ(phone_of(reader, "+80012345678"), "+80012345678") << "a non-geographic code";
}

TEST(Identities, OnlyWhatsAppsOwnServersWithDigitUsersAreWhatsAppIds) {
  IdentityReader reader("BR", true);
  EXPECT_FALSE(reader.whatsapp_id("x@evil.example"));
  EXPECT_FALSE(reader.whatsapp_id("5511987654321@evil.example"));
  EXPECT_FALSE(reader.whatsapp_id("abc@lid"));
  EXPECT_FALSE(reader.whatsapp_id("abc@s.whatsapp.net"));
  EXPECT_FALSE(reader.whatsapp_id("123@newsletter"));
  EXPECT_FALSE(reader.whatsapp_id(std::string("2012345\0" "67890123@lid", 20)));
  EXPECT_FALSE(reader.whatsapp_id("2012345\x01" "67890123@lid"));
  EXPECT_FALSE(reader.whatsapp_id("5511987654321@s.whatsapp.net\x7f"));
  auto lid = reader.whatsapp_id("201234567890123@LID");
  ASSERT_TRUE(lid);
  EXPECT_EQ(lid->value, "201234567890123@lid");
}

TEST(Identities, AddressesWithControlCharactersAreNotAddresses) {
  IdentityReader reader("BR", true);
  EXPECT_FALSE(reader.email(std::string("ana\0@example.com", 16)));
  EXPECT_FALSE(reader.email("ana\x1b@example.com"));
  EXPECT_FALSE(reader.email("Ana <ana@exam\x7fple.com>"));
  EXPECT_TRUE(reader.email("  ana@example.com\r\n")) << "surrounding white space is trimmed";
}

TEST(Identities, AddressesCompareIgnoringCaseAndFoldPlusTagsWhenAsked) {
  IdentityReader folding("BR", true);
  IdentityReader keeping("BR", false);
  EXPECT_EQ(folding.email("Ana Souza <Ana+Loja@Example.COM>")->value, "ana@example.com");
  EXPECT_EQ(keeping.email("Ana+Loja@Example.COM")->value, "ana+loja@example.com");
  EXPECT_FALSE(folding.email("no address here"));
  EXPECT_FALSE(folding.email("a@"));
}

TEST(Subjects, IdsAreFoundBehindAnyPrefix) {
  SubjectReader reader({"[#{id}]", "Ticket#{id}"}, {"re", "res", "enc", "fwd", "aw", "wg"});
  EXPECT_EQ(reader.case_ids("[#42] Pedido"), std::vector<int64_t>{42});
  EXPECT_EQ(reader.case_ids("ENC: [#42] Pedido"), std::vector<int64_t>{42});
  EXPECT_EQ(reader.case_ids("AW: WG: RES: Re: [#42]"), std::vector<int64_t>{42});
  EXPECT_EQ(reader.case_ids("TICKET#7 e [#42] e [#42]"), (std::vector<int64_t>{7, 42}));
  EXPECT_TRUE(reader.case_ids("[#] [#abc] #42 [42]").empty());
}

TEST(Subjects, PrefixesAreStrippedForTitles) {
  SubjectReader reader({"[#{id}]"}, {"re", "res", "enc", "fwd", "aw", "wg"});
  EXPECT_EQ(reader.without_prefixes("RES: ENC: Fwd: Orçamento"), "Orçamento");
  EXPECT_EQ(reader.without_prefixes("Re[2]: AW : Pedido"), "Pedido");
  EXPECT_EQ(reader.without_prefixes("Reunião amanhã"), "Reunião amanhã");
  EXPECT_EQ(reader.without_prefixes("Encomenda: 3 caixas"), "Encomenda: 3 caixas");
}

}  // namespace
}  // namespace connector::cases
