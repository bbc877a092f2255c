// The `matching:` section: defaults, every choice, and the refusals with their positions.
#include <gtest/gtest.h>

#include "config/Config.hpp"

namespace connector::config {
namespace {

Expected<Config> parse(const std::string &text) { return parse_config(text, "test.yaml", "/base"); }

std::string error_of(const std::string &text) {
  auto config = parse(text);
  return config ? "(accepted)" : config.failure().message;
}

TEST(MatchingConfig, DefaultsWhenTheSectionIsMissing) {
  auto config = parse("plugins:\n");
  ASSERT_TRUE(config) << config.failure().message;
  const Matching &m = config->matching;
  EXPECT_EQ(m.default_region, "BR");
  EXPECT_TRUE(m.fold_plus_addressing);
  EXPECT_EQ(m.email_rules, (std::vector<std::string>{"thread", "subject", "contact"}));
  EXPECT_EQ(m.whatsapp_rules, std::vector<std::string>{"contact"});
  EXPECT_EQ(m.subject_patterns, std::vector<std::string>{"[#{id}]"});
  EXPECT_TRUE(m.subject_requires_case_contact);
  EXPECT_EQ(m.no_match, "new_case");
  EXPECT_EQ(m.closed_case, "reopen_within");
  EXPECT_EQ(m.reopen_within_days, 7);
  for (const char *prefix : {"re", "res", "fwd", "enc", "aw", "wg"}) {
    EXPECT_NE(std::find(m.reply_prefixes.begin(), m.reply_prefixes.end(), prefix),
              m.reply_prefixes.end())
        << prefix;
  }
}

TEST(MatchingConfig, EveryChoiceIsRead) {
  auto config = parse(
      "matching:\n"
      "  default_region: PT\n"
      "  fold_plus_addressing: false\n"
      "  email:\n"
      "    rules: [subject, thread]\n"
      "    subject_patterns: ['Ticket#{id}', '[ACME-{id}]']\n"
      "    subject_requires_case_contact: false\n"
      "    reply_prefixes: [re, sv]\n"
      "  whatsapp:\n"
      "    rules: []\n"
      "  no_match: unassigned\n"
      "  closed_case: new_case\n"
      "  reopen_within_days: 30\n");
  ASSERT_TRUE(config) << config.failure().message;
  const Matching &m = config->matching;
  EXPECT_EQ(m.default_region, "PT");
  EXPECT_FALSE(m.fold_plus_addressing);
  EXPECT_EQ(m.email_rules, (std::vector<std::string>{"subject", "thread"}));
  EXPECT_TRUE(m.whatsapp_rules.empty());
  EXPECT_EQ(m.subject_patterns, (std::vector<std::string>{"Ticket#{id}", "[ACME-{id}]"}));
  EXPECT_FALSE(m.subject_requires_case_contact);
  EXPECT_EQ(m.reply_prefixes, (std::vector<std::string>{"re", "sv"}));
  EXPECT_EQ(m.no_match, "unassigned");
  EXPECT_EQ(m.closed_case, "new_case");
  EXPECT_EQ(m.reopen_within_days, 30);
}

TEST(MatchingConfig, MistakesAreRefusedWithPositionAndKeyPath) {
  EXPECT_EQ(error_of("matching:\n  no_match: ignore\n"),
            "test.yaml:2:3: matching.no_match: expected one of new_case, unassigned, got "
            "\"ignore\"");
  EXPECT_EQ(error_of("matching:\n  email:\n    rules: [thread, sender]\n"),
            "test.yaml:3:21: matching.email.rules[1]: unknown rule \"sender\"; valid rules are: "
            "thread, subject, contact");
  EXPECT_NE(error_of("matching:\n  email:\n    rules: [thread, thread]\n").find("listed twice"),
            std::string::npos);
  EXPECT_NE(
      error_of("matching:\n  whatsapp:\n    rules: [subject]\n").find("valid rules are: contact"),
      std::string::npos);
  EXPECT_NE(error_of("matching:\n  email:\n    subject_patterns: ['[#]']\n").find("{id}"),
            std::string::npos);
  EXPECT_NE(error_of("matching:\n  default_region: Brazil\n").find("two-letter"),
            std::string::npos);
  EXPECT_NE(error_of("matching:\n  default_region: XX\n").find("\"XX\" is not a region"),
            std::string::npos)
      << "two letters that name no region libphonenumber knows";
  EXPECT_NE(error_of("matching:\n  reopen_within_days: -1\n").find("number of days"),
            std::string::npos);
  EXPECT_NE(error_of("matching:\n  closed_cases: reopen\n").find("unknown key"), std::string::npos);
}

}  // namespace
}  // namespace connector::config
