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
