// The matching rules and every configuration choice, driven through Casework::ingest on a real
// (temporary) store.
#include "CaseFixture.hpp"

namespace connector::cases::test {
namespace {

using Verdict = Decision::Verdict;

class CaseMatching : public CaseFixture {};

// --- WhatsApp and phones ------------------------------------------------------------------------

TEST_F(CaseMatching, OldWhatsAppIdWithoutNinthDigitFindsTheCaseOfTheThirteenDigitNumber) {
  const int64_t case_id = new_case(kAna, {.phones = Strings{"+55 11 98765-4321"}});

  Decision d = receive(kAnaWhatsApp, whatsapp({"551187654321@s.whatsapp.net"}));

  EXPECT_EQ(d.verdict, Verdict::kLink) << d.why;
  EXPECT_EQ(d.case_id, case_id);
  EXPECT_EQ(d.method, "phone");
}

TEST_F(CaseMatching, ThirteenDigitNumberFindsTheContactFirstSeenWithoutTheNinthDigit) {
  Decision first = receive(kAnaWhatsApp, whatsapp({"551187654321@s.whatsapp.net"}));
  ASSERT_EQ(first.verdict, Verdict::kNewCase);

  Decision second = receive(kAnaWhatsApp, whatsapp({"5511987654321@s.whatsapp.net"}));

  EXPECT_EQ(second.verdict, Verdict::kLink) << second.why;
  EXPECT_EQ(second.case_id, first.case_id);
  EXPECT_EQ(count("SELECT COUNT(*) FROM contacts"), 1);
}

TEST_F(CaseMatching, LandlinesKeepTheirEightDigits) {
  const int64_t landline_case = new_case(kAna, {.phones = Strings{"+551133334444"}});

  Decision d = receive(kAnaWhatsApp, whatsapp({"5511933334444@s.whatsapp.net"}));

  EXPECT_EQ(d.verdict, Verdict::kNewCase) << d.why;
  EXPECT_NE(d.case_id, landline_case);
}

TEST_F(CaseMatching, LidFirstThenPhoneLaterIsOneContactAndOneCase) {
  Decision by_lid = receive(kAnaWhatsApp, whatsapp({"201234567890123@lid"}));
  ASSERT_EQ(by_lid.verdict, Verdict::kNewCase);

  // The server reveals the phone behind the LID (remoteJidAlt).
  Decision both =
      receive(kAnaWhatsApp, whatsapp({"201234567890123@lid", "5511987654321@s.whatsapp.net"}));
  Decision by_phone = receive(kAnaWhatsApp, whatsapp({"5511987654321@s.whatsapp.net"}));

  EXPECT_EQ(both.case_id, by_lid.case_id) << both.why;
  EXPECT_EQ(by_phone.case_id, by_lid.case_id) << by_phone.why;
  EXPECT_EQ(by_phone.method, "phone");
  EXPECT_EQ(count("SELECT COUNT(*) FROM contacts"), 1);
  EXPECT_EQ(count("SELECT COUNT(*) FROM cases"), 1);
}

TEST_F(CaseMatching, LidContactMergesWithTheKnownPhoneContactAndTheMergeIsRecorded) {
  Decision by_lid = receive(kAnaWhatsApp, whatsapp({"201234567890123@lid"}));
  const int64_t lid_contact = *by_lid.contact_id;
  const int64_t phone_case = new_case(kAna, {.phones = Strings{"+5511987654321"}});
  const int64_t phone_contact = *contact_of_case(phone_case);
  ASSERT_NE(lid_contact, phone_contact);

  Decision both =
      receive(kAnaWhatsApp, whatsapp({"201234567890123@lid", "5511987654321@s.whatsapp.net"}));

  EXPECT_EQ(both.contact_id, lid_contact);
  EXPECT_EQ(both.case_id, phone_case) << "the newest open case of the joined contact";
  EXPECT_EQ(contact_of_case(phone_case), lid_contact);
  EXPECT_EQ(contact_of_case(*by_lid.case_id), lid_contact);
  EXPECT_EQ(count("SELECT COUNT(*) FROM contact_merges WHERE kept_id = ? AND merged_id = ?",
                  {lid_contact, phone_contact}),
            1);
}

TEST_F(CaseMatching, UndoingAMergeGivesBackIdentitiesAndCasesAndIsNotRedoneByItself) {
  Decision by_lid = receive(kAnaWhatsApp, whatsapp({"201234567890123@lid"}));
  const int64_t phone_case = new_case(kAna, {.phones = Strings{"+5511987654321"}});
  const int64_t phone_contact = *contact_of_case(phone_case);
  receive(kAnaWhatsApp, whatsapp({"201234567890123@lid", "5511987654321@s.whatsapp.net"}));
  const int64_t merge_id = count("SELECT MAX(id) FROM contact_merges");

  ASSERT_TRUE(work_->undo_merge(merge_id, kAna));

  EXPECT_EQ(contact_of_case(phone_case), phone_contact);
  EXPECT_EQ(contact_of_case(*by_lid.case_id), by_lid.contact_id);
  EXPECT_EQ(count("SELECT contact_id FROM contact_identities WHERE value = '+5511987654321'"),
            phone_contact);
  EXPECT_EQ(count("SELECT COUNT(*) FROM contact_merges WHERE undone_at IS NOT NULL"), 1);
  EXPECT_FALSE(work_->undo_merge(merge_id, kAna)) << "an undone merge cannot be undone twice";

  // The same pair in one message again: no new merge.
  receive(kAnaWhatsApp, whatsapp({"201234567890123@lid", "5511987654321@s.whatsapp.net"}));
  EXPECT_EQ(count("SELECT COUNT(*) FROM contact_merges"), 1);
  EXPECT_EQ(contact_of_case(phone_case), phone_contact);
}

TEST_F(CaseMatching, OneCustomerOnBothChannelsLandsOnOneCase) {
  const int64_t case_id =
      new_case(kAna, {.phones = Strings{"(11) 98765-4321"}, .addresses = Strings{"Cliente@Example.com"}});

  Decision on_whatsapp = receive(kAnaWhatsApp, whatsapp({"5511987654321@s.whatsapp.net"}));
  Decision by_mail = receive(kAnaMail, mail("Cliente <cliente@EXAMPLE.com>", "Pedido"));

  EXPECT_EQ(on_whatsapp.case_id, case_id) << on_whatsapp.why;
  EXPECT_EQ(by_mail.case_id, case_id) << by_mail.why;
  EXPECT_EQ(by_mail.method, "address");
  EXPECT_EQ(count("SELECT COUNT(*) FROM contacts"), 1);
}

TEST_F(CaseMatching, PlatformJoiningPhoneAndAddressOfTwoContactsMergesThem) {
  Decision on_whatsapp = receive(kAnaWhatsApp, whatsapp({"5511987654321@s.whatsapp.net"}));
  Decision by_mail = receive(kAnaMail, mail("cliente@example.com", "Pedido"));
  ASSERT_NE(on_whatsapp.contact_id, by_mail.contact_id);

  ASSERT_TRUE(
      work_->update_case(*on_whatsapp.case_id, {.addresses = Strings{"cliente@example.com"}}, kAna));

  EXPECT_EQ(contact_of_case(*by_mail.case_id), contact_of_case(*on_whatsapp.case_id));
  EXPECT_EQ(count("SELECT COUNT(*) FROM contact_merges"), 1);
}

TEST_F(CaseMatching, WhatsAppGroupIdsNameNoContact) {
  Decision d = receive(kAnaWhatsApp, whatsapp({"120363000000000000@g.us"}));
  EXPECT_TRUE(d.identities.empty());
  EXPECT_EQ(count("SELECT COUNT(*) FROM contacts"), 0);
}

// --- E-mail rules -------------------------------------------------------------------------------

TEST_F(CaseMatching, ReplyThreadsOntoTheCaseOfTheMailItAnswers) {
  const int64_t case_id = new_case(kAna, {.addresses = Strings{"cliente@example.com"}});
  sent_mail(kAnaMail, "<reply-1@host.example>", case_id);

  // A colleague of the customer answers: unknown sender, but the thread says where it belongs.
  Decision d = receive(kAnaMail, mail("outra@example.com", "Re: Pedido",
                                      {"<unknown@elsewhere>", "<reply-1@host.example>"}));

  EXPECT_EQ(d.verdict, Verdict::kLink) << d.why;
  EXPECT_EQ(d.case_id, case_id);
  EXPECT_EQ(d.method, "thread");
}

TEST_F(CaseMatching, ThreadOfAnotherAttendantsCaseIsNotFollowed) {
  const int64_t betos_case = new_case(kBeto, {.addresses = Strings{"x@example.com"}});
  sent_mail(kBetoMail, "<beto-1@host.example>", betos_case);

  Decision d = receive(kAnaMail, mail("cliente@example.com", "Re: x", {"<beto-1@host.example>"}));

  EXPECT_NE(d.case_id, betos_case);
  EXPECT_EQ(d.verdict, Verdict::kNewCase);
}

// One customer mail addressed to two attendants is stored once for each: replies that refer to
// it thread onto each attendant's own case, not only the first one's.
TEST_F(CaseMatching, AMailThatReachedTwoAttendantsThreadsForBoth) {
  store::NewMessage original = mail("x@example.com", "Pedido");
  original.details = {{"message_id", "<orig@cust.example>"}};
  const Decision anas = receive(kAnaMail, original);
  const Decision betos = receive(kBetoMail, original);
  ASSERT_TRUE(anas.case_id && betos.case_id);
  ASSERT_NE(*anas.case_id, *betos.case_id);

  for (const auto &[account, expected] : {std::pair{kBetoMail, *betos.case_id},
                                          std::pair{kAnaMail, *anas.case_id}}) {
    Decision d = receive(account, mail("colega@example.com", "Re: Pedido", {"<orig@cust.example>"}));
    EXPECT_EQ(d.case_id, expected) << account << ": " << d.why;
    EXPECT_EQ(d.method, "thread") << account << ": " << d.why;
  }
}

TEST_F(CaseMatching, SubjectIdFromAStrangerIsRefused) {
  const int64_t case_id = new_case(kAna, {.addresses = Strings{"cliente@example.com"}});

  Decision d = receive(
      kAnaMail, mail("intruso@example.org", "Re: [#" + std::to_string(case_id) + "] Pedido"));

  EXPECT_NE(d.case_id, case_id) << d.why;
  EXPECT_EQ(d.verdict, Verdict::kNewCase);
  EXPECT_NE(d.why.find("not its contact"), std::string::npos) << d.why;
}

TEST_F(CaseMatching, SubjectIdFromAStrangerIsAcceptedWhenConfiguredSo) {
  settings_.subject_requires_case_contact = false;
  start();
  const int64_t case_id = new_case(kAna, {.addresses = Strings{"cliente@example.com"}});

  Decision d = receive(
      kAnaMail, mail("intruso@example.org", "Re: [#" + std::to_string(case_id) + "] Pedido"));

  EXPECT_EQ(d.case_id, case_id) << d.why;
  EXPECT_EQ(d.method, "subject");
}

TEST_F(CaseMatching, ForwardedMailWithTheIdBehindEncFindsThatCase) {
  const int64_t older = new_case(kAna, {.addresses = Strings{"cliente@example.com"}});
  const int64_t newer = new_case(kAna, {.addresses = Strings{"cliente@example.com"}});

  Decision d = receive(
      kAnaMail, mail("cliente@example.com", "ENC: RES: [#" + std::to_string(older) + "] Pedido"));

  EXPECT_EQ(d.case_id, older) << "the subject rule runs before the contact's open case (" << newer
                              << "): " << d.why;
  EXPECT_EQ(d.method, "subject");
}

TEST_F(CaseMatching, ConfiguredSubjectPatternsAreUsed) {
  settings_.subject_patterns = {"Ticket#{id}"};
  start();
  const int64_t older = new_case(kAna, {.addresses = Strings{"cliente@example.com"}});
  new_case(kAna, {.addresses = Strings{"cliente@example.com"}});

  Decision bracketed =
      receive(kAnaMail, mail("cliente@example.com", "AW: [#" + std::to_string(older) + "] Pedido"));
  Decision ticket = receive(
      kAnaMail, mail("cliente@example.com", "WG: ticket#" + std::to_string(older) + " Pedido"));

  EXPECT_NE(bracketed.case_id, older) << "[#…] is no longer a pattern";
  EXPECT_EQ(ticket.case_id, older) << ticket.why;
}

TEST_F(CaseMatching, MailFindsTheContactsOpenCaseByAddress) {
  const int64_t case_id = new_case(kAna, {.addresses = Strings{"cliente@example.com"}});
  Decision d = receive(kAnaMail, mail("CLIENTE@example.com", "Outra coisa"));
  EXPECT_EQ(d.case_id, case_id);
  EXPECT_EQ(d.method, "address");
}

TEST_F(CaseMatching, ContactRuleLeftOutOfTheEmailRulesIsNotUsed) {
  settings_.email_rules = {"thread", "subject"};
  start();
  const int64_t case_id = new_case(kAna, {.addresses = Strings{"cliente@example.com"}});
  Decision d = receive(kAnaMail, mail("cliente@example.com", "Outra coisa"));
  EXPECT_NE(d.case_id, case_id);
  EXPECT_EQ(d.verdict, Verdict::kNewCase);
}

TEST_F(CaseMatching, PlusAddressesFoldWhenConfigured) {
  const int64_t case_id = new_case(kAna, {.addresses = Strings{"cliente@example.com"}});
  Decision folded = receive(kAnaMail, mail("cliente+loja@example.com", "Pedido"));
  EXPECT_EQ(folded.case_id, case_id);

  settings_.fold_plus_addressing = false;
  start();
  Decision kept = receive(kAnaMail, mail("cliente+loja@example.com", "Pedido"));
  EXPECT_NE(kept.case_id, case_id);
}

TEST_F(CaseMatching, CasesOfAnotherAttendantAreNeverMatched) {
  const int64_t betos_case = new_case(kBeto, {.addresses = Strings{"cliente@example.com"}});
  Decision d = receive(kAnaMail,
                       mail("cliente@example.com", "[#" + std::to_string(betos_case) + "] Pedido"));
  EXPECT_NE(d.case_id, betos_case);
  EXPECT_NE(*contact_of_case(*d.case_id), *contact_of_case(betos_case))
      << "nor another attendant's contact: each attendant has their own";
}

// --- No match, closed cases, automatic mail
// -------------------------------------------------------

TEST_F(CaseMatching, NoMatchOpensANewCaseTitledWithoutPrefixes) {
  Decision d = receive(kAnaMail, mail("novo@example.com", "RES: Fwd: Orçamento"));
  ASSERT_EQ(d.verdict, Verdict::kNewCase);
  auto shown = work_->case_json(*d.case_id);
  ASSERT_TRUE(shown);
  EXPECT_EQ((*shown)["title"], "Orçamento");
  EXPECT_EQ((*shown)["contact"]["emails"], Json::array({"novo@example.com"}));
  EXPECT_EQ(count("SELECT COUNT(*) FROM message_links WHERE method = 'new_case'"), 1);
}

TEST_F(CaseMatching, NoMatchLeavesTheMessageUnassignedWhenConfigured) {
  settings_.no_match = "unassigned";
  start();
  Decision d = receive(kAnaMail, mail("novo@example.com", "Orçamento"));
  EXPECT_EQ(d.verdict, Verdict::kUnassigned);
  EXPECT_EQ(count("SELECT COUNT(*) FROM cases"), 0);
  EXPECT_EQ(count("SELECT COUNT(*) FROM message_links"), 0);
  EXPECT_EQ(count("SELECT COUNT(*) FROM contacts"), 1) << "the sender is still remembered";
}

TEST_F(CaseMatching, OutOfOfficeReplyToAWaitingCaseIsFiledWithoutOpeningAnything) {
  const int64_t waiting = new_case(kAna, {.addresses = Strings{"cliente@example.com"}});
  sent_mail(kAnaMail, "<question@host.example>", waiting);

  store::NewMessage auto_reply =
      mail("cliente@example.com", "Ausente: Pedido", {"<question@host.example>"});
  auto_reply.automatic = true;
  Decision d = receive(kAnaMail, auto_reply);

  EXPECT_EQ(d.case_id, waiting);
  EXPECT_EQ(d.method, "thread");
  EXPECT_EQ(count("SELECT COUNT(*) FROM cases"), 1);
}

TEST_F(CaseMatching, AutomaticMailNeverReopensNorOpensACase) {
  settings_.closed_case = "reopen";
  start();
  const int64_t closed = new_case(kAna, {.addresses = Strings{"cliente@example.com"}});
  ASSERT_TRUE(work_->update_case(closed, {.status = "closed"}, kAna));

  store::NewMessage bounce = mail("cliente@example.com", "Out of office");
  bounce.automatic = true;
  Decision to_closed = receive(kAnaMail, bounce);
  store::NewMessage stranger = mail("mailer-daemon@example.net", "Undelivered Mail");
  stranger.automatic = true;
  Decision unknown = receive(kAnaMail, stranger);

  EXPECT_EQ(to_closed.case_id, closed);
  EXPECT_FALSE(to_closed.reopen);
  EXPECT_EQ(status_of(closed), "closed");
  EXPECT_EQ(unknown.verdict, Verdict::kUnassigned);
  EXPECT_EQ(count("SELECT COUNT(*) FROM cases"), 1);
  EXPECT_EQ(count("SELECT COUNT(*) FROM contact_identities WHERE value = "
                  "'mailer-daemon@example.net'"),
            0)
      << "automatic mail from a stranger made a contact";
}

// A merge whose kept contact was merged again afterwards cannot be undone first: nothing it
// joined is where it left it. The later one is undone first, then this one gives everything back.
TEST_F(CaseMatching, AMergeFollowedByAnotherIsUndoneOnlyAfterIt) {
  const int64_t by_phone = new_case(kAna, {.phones = Strings{"+5521977770001"}});
  const int64_t by_bee = new_case(kAna, {.addresses = Strings{"bee@example.com"}});
  const int64_t bee_contact = *contact_of_case(by_bee);
  ASSERT_TRUE(work_->update_case(by_phone, {.addresses = Strings{"bee@example.com"}}, kAna));
  const int64_t first = count("SELECT MAX(id) FROM contact_merges");
  const int64_t by_cee = new_case(kAna, {.addresses = Strings{"cee@example.com"}});
  ASSERT_TRUE(work_->update_case(by_cee, {.phones = Strings{"+5521977770001"}}, kAna));
  const int64_t second = count("SELECT MAX(id) FROM contact_merges");
  ASSERT_NE(first, second);
  ASSERT_EQ(count("SELECT merged_id FROM contact_merges WHERE id = ?", {second}),
            count("SELECT kept_id FROM contact_merges WHERE id = ?", {first}))
      << "the second merge must take the first one's kept contact along";

  auto refused = work_->undo_merge(first, kAna);
  ASSERT_FALSE(refused) << "undone, though nothing it joined could be moved back";
  EXPECT_EQ(refused.failure().code, "state");
  EXPECT_NE(refused.failure().message.find("undo merge " + std::to_string(second) + " first"),
            std::string::npos)
      << refused.failure().message;
  EXPECT_EQ(count("SELECT COUNT(*) FROM contact_merges WHERE undone_at IS NOT NULL"), 0);

  ASSERT_TRUE(work_->undo_merge(second, kAna));
  ASSERT_TRUE(work_->undo_merge(first, kAna));
  EXPECT_EQ(contact_of_case(by_bee), bee_contact);
  EXPECT_EQ(count("SELECT contact_id FROM contact_identities WHERE value = 'bee@example.com'"),
            bee_contact);
}

class ClosedCases : public CaseMatching {
 protected:
  // A closed case of the customer, closed `days` ago.
  int64_t closed_case(int days) {
    const int64_t id = new_case(kAna, {.addresses = Strings{"cliente@example.com"}});
    EXPECT_TRUE(work_->update_case(id, {.status = "closed"}, kAna));
    EXPECT_TRUE(db_->run("UPDATE cases SET closed_at = ? WHERE id = ?",
                         {store::now_ms() - days * 24LL * 3600 * 1000, id}));
    return id;
  }
};

TEST_F(ClosedCases, ClosedWithinTheWindowIsReopened) {
  settings_.closed_case = "reopen_within";
  settings_.reopen_within_days = 7;
  start();
  const int64_t id = closed_case(2);
  Decision d = receive(kAnaMail, mail("cliente@example.com", "Mais uma coisa"));
  EXPECT_EQ(d.case_id, id);
  EXPECT_TRUE(d.reopen);
  EXPECT_EQ(status_of(id), "open");
}

TEST_F(ClosedCases, ClosedPastTheWindowGetsANewCase) {
  settings_.closed_case = "reopen_within";
  settings_.reopen_within_days = 7;
  start();
  const int64_t id = closed_case(10);
  Decision d = receive(kAnaMail, mail("cliente@example.com", "Mais uma coisa"));
  EXPECT_EQ(d.verdict, Verdict::kNewCase) << d.why;
  EXPECT_NE(d.case_id, id);
  EXPECT_EQ(status_of(id), "closed");
  EXPECT_EQ(contact_of_case(*d.case_id), contact_of_case(id));
}

// A reply in the thread of a case closed past the window opens one new case; the messages after
// it, in the same thread or naming the old case's id (or both ids, as replies from the new case
// do), go to that new case instead of opening one each.
TEST_F(ClosedCases, TheThreadOfACaseClosedPastTheWindowOpensOnlyOneNewCase) {
  settings_.closed_case = "reopen_within";
  settings_.reopen_within_days = 7;
  start();
  const int64_t old_case = closed_case(10);
  sent_mail(kAnaMail, "<r1@host.example>", old_case);

  Decision first = receive(kAnaMail, mail("cliente@example.com", "Re: Pedido", {"<r1@host.example>"}));
  ASSERT_EQ(first.verdict, Verdict::kNewCase) << first.why;
  const int64_t new_case_id = *first.case_id;
  const std::string old_id = std::to_string(old_case);
  for (const auto &[subject, refs] : std::vector<std::pair<std::string, std::vector<std::string>>>{
           {"Re: Pedido", {"<r1@host.example>"}},
           {"Re: [#" + old_id + "] Pedido", {}},
           {"Re: [#" + old_id + "] Pedido [#" + std::to_string(new_case_id) + "]", {}}}) {
    Decision d = receive(kAnaMail, mail("cliente@example.com", subject, refs));
    EXPECT_EQ(d.verdict, Verdict::kLink) << subject << ": " << d.why;
    EXPECT_EQ(d.case_id, new_case_id) << subject << ": " << d.why;
  }
  EXPECT_EQ(status_of(old_case), "closed");
  EXPECT_EQ(count("SELECT COUNT(*) FROM cases"), 2);
}

TEST_F(ClosedCases, ReopenReopensHoweverOld) {
  settings_.closed_case = "reopen";
  start();
  const int64_t id = closed_case(400);
  Decision d = receive(kAnaMail, mail("cliente@example.com", "Voltei"));
  EXPECT_EQ(d.case_id, id);
  EXPECT_EQ(status_of(id), "open");
}

TEST_F(ClosedCases, NewCaseNeverReopens) {
  settings_.closed_case = "new_case";
  start();
  const int64_t id = closed_case(0);
  Decision d = receive(kAnaMail, mail("cliente@example.com", "Voltei"));
  EXPECT_EQ(d.verdict, Verdict::kNewCase);
  EXPECT_EQ(status_of(id), "closed");
}

TEST_F(ClosedCases, SubjectIdOfAClosedCaseFollowsTheClosedCaseChoiceToo) {
  settings_.closed_case = "new_case";
  start();
  const int64_t id = closed_case(0);
  Decision d = receive(kAnaMail, mail("cliente@example.com", "[#" + std::to_string(id) + "]"));
  EXPECT_EQ(d.verdict, Verdict::kNewCase);
  EXPECT_NE(d.case_id, id);
}

// --- Manual moves and the live count
// --------------------------------------------------------------

TEST_F(CaseMatching, ManualMoveRecordsWhoAndReplacesTheAutomaticLink) {
  Decision d = receive(kAnaMail, mail("cliente@example.com", "Pedido"));
  const int64_t message = last_message_;
  const int64_t other = new_case(kAna, {.title = "Outro"});

  ASSERT_TRUE(work_->move_message(message, other, kAna));

  auto shown = conversations_->message(message);
  ASSERT_TRUE(shown);
  EXPECT_EQ((*shown)["case"]["id"], other);
  EXPECT_EQ((*shown)["case"]["method"], "manual");
  EXPECT_EQ((*shown)["case"]["by"], kAna);
  EXPECT_NE(other, *d.case_id);
}

TEST_F(CaseMatching, AutoLinkedCountIsPublishedWhenItChanges) {
  receive(kAnaMail, mail("um@example.com", "A"));
  receive(kAnaMail, mail("um@example.com", "A again"));  // same case: no change
  receive(kAnaMail, mail("dois@example.com", "B"));

  auto counts = published("account.auto_linked");
  ASSERT_EQ(counts.size(), 2u);
  EXPECT_EQ(counts[0]["account_id"], kAnaMail);
  EXPECT_EQ(counts[0]["cases"], 1);
  EXPECT_EQ(counts[1]["cases"], 2);
  EXPECT_EQ(conversations_->auto_linked_cases(kAnaMail), 2);

  // Moving the only message of case B by hand takes B off the count.
  ASSERT_TRUE(work_->move_message(last_message_, std::nullopt, kAna));
  counts = published("account.auto_linked");
  ASSERT_EQ(counts.size(), 3u);
  EXPECT_EQ(counts[2]["cases"], 1);
}


// --- Contacts belong to their attendant ----------------------------------------------------------

TEST_F(CaseMatching, NamingAnotherAttendantsCustomerMakesYourOwnContactAndLeavesTheirsAlone) {
  const int64_t anas_case = new_case(
      kAna, {.phones = Strings{"+5511987654321"}, .addresses = Strings{"cliente@example.com"}});
  const int64_t anas_contact = *contact_of_case(anas_case);
  const auto anas_identities = identities_of(anas_contact);

  // Beto names the same phone, then (on another case) the same address, then joins them.
  const int64_t betos_case = new_case(kBeto, {.phones = Strings{"(11) 98765-4321"}});
  const int64_t betos_other = new_case(kBeto, {.addresses = Strings{"Cliente@Example.com"}});
  ASSERT_TRUE(work_->update_case(betos_case, {.addresses = Strings{"cliente@example.com"}}, kBeto));

  const int64_t betos_contact = *contact_of_case(betos_case);
  EXPECT_NE(betos_contact, anas_contact);
  EXPECT_EQ(contact_of_case(betos_other), betos_contact) << "Beto's own two contacts merged";
  EXPECT_EQ(contact_of_case(anas_case), anas_contact);
  EXPECT_EQ(identities_of(anas_contact), anas_identities);
  EXPECT_EQ(count("SELECT COUNT(*) FROM contact_merges WHERE kept_id = ?1 OR merged_id = ?1",
                  {anas_contact}),
            0);
  EXPECT_EQ(count("SELECT COUNT(*) FROM contacts WHERE id = ? AND attendant_id = ?",
                  {betos_contact, std::string(kBeto)}),
            1);

  // Each attendant's inbound messages still land on their own case.
  Decision to_ana = receive(kAnaWhatsApp, whatsapp({"5511987654321@s.whatsapp.net"}));
  Decision to_ana_by_mail = receive(kAnaMail, mail("cliente@example.com", "Pedido"));
  Decision to_beto = receive(kBetoWhatsApp, whatsapp({"5511987654321@s.whatsapp.net"}));
  EXPECT_EQ(to_ana.case_id, anas_case) << to_ana.why;
  EXPECT_EQ(to_ana.contact_id, anas_contact);
  EXPECT_EQ(to_ana_by_mail.case_id, anas_case) << to_ana_by_mail.why;
  EXPECT_EQ(to_beto.contact_id, betos_contact) << to_beto.why;
  EXPECT_TRUE(to_beto.case_id == betos_case || to_beto.case_id == betos_other) << to_beto.why;
}

TEST_F(CaseMatching, AnInboundMessageNeverJoinsAnotherAttendantsContact) {
  const int64_t anas_case = new_case(kAna, {.addresses = Strings{"cliente@example.com"}});
  const int64_t anas_contact = *contact_of_case(anas_case);

  // Beto's mail from the same address, naming a phone too: Beto's contact gets both.
  store::NewMessage m = mail("cliente@example.com", "Oi");
  m.link_keys["phones"] = {"+5511987654321"};
  Decision d = receive(kBetoMail, m);

  EXPECT_NE(d.contact_id, anas_contact) << d.why;
  EXPECT_EQ(d.verdict, Verdict::kNewCase) << "Ana's case is not Beto's";
  EXPECT_EQ(identities_of(anas_contact), std::vector<std::string>{"cliente@example.com"});
  EXPECT_EQ(identities_of(*d.contact_id),
            (std::vector<std::string>{"+5511987654321", "cliente@example.com"}));
}

// --- Outbound messages a plugin reports itself -------------------------------------------------

TEST_F(CaseMatching, OutboundFromThePhoneIsFiledOnTheRecipientsOpenCase) {
  const int64_t open_case = new_case(kAna, {.phones = Strings{"+5511987654321"}});

  Decision d = receive(kAnaWhatsApp,
                       whatsapp_from_phone("551187654321@s.whatsapp.net", "Já enviei o boleto"));

  EXPECT_EQ(d.verdict, Verdict::kLink) << d.why;
  EXPECT_EQ(d.case_id, open_case);
  EXPECT_EQ(d.method, "phone");
  EXPECT_EQ(case_of_message(last_message_), open_case);
}

TEST_F(CaseMatching, OutboundNeverOpensNorReopensACase) {
  settings_.closed_case = "reopen";  // inbound would reopen; outbound must not
  start();
  const int64_t closed = new_case(kAna, {.status = "closed", .phones = Strings{"+5511987654321"}});

  Decision to_closed =
      receive(kAnaWhatsApp, whatsapp_from_phone("5511987654321@s.whatsapp.net", "Oi"));
  Decision to_stranger =
      receive(kAnaWhatsApp, whatsapp_from_phone("5521999998888@s.whatsapp.net", "Oi"));
  store::NewMessage no_keys = whatsapp_from_phone("5521999997777@s.whatsapp.net", "Oi");
  no_keys.link_keys = Json::object();  // the recipient field stands in
  Decision by_recipient = receive(kAnaWhatsApp, no_keys);

  EXPECT_EQ(to_closed.verdict, Verdict::kUnassigned) << to_closed.why;
  EXPECT_EQ(status_of(closed), "closed");
  EXPECT_EQ(to_stranger.verdict, Verdict::kUnassigned) << to_stranger.why;
  EXPECT_EQ(by_recipient.identities, (std::vector<Identity>{{"phone", "+5521999997777"}}));
  EXPECT_EQ(count("SELECT COUNT(*) FROM cases"), 1);
  EXPECT_EQ(count("SELECT COUNT(*) FROM message_links"), 0);
}

// A plugin that states empty identity lists (the WhatsApp plugin does for a group message unless
// link_groups is set) links the message to no one: the sender does not stand in.
TEST_F(CaseMatching, EmptyStatedKeysLinkTheMessageToNoOne) {
  start();
  const int64_t open_case = new_case(kAna, {.phones = Strings{"+5511987654321"}});
  store::NewMessage group = whatsapp({}, "no grupo");
  group.sender = "5511987654321@s.whatsapp.net";
  group.link_keys = {{"phones", Json::array()}, {"whatsapp_ids", Json::array()}};
  Decision kept_off = receive(kAnaWhatsApp, group);
  EXPECT_EQ(kept_off.verdict, Verdict::kUnassigned) << kept_off.why;
  EXPECT_TRUE(kept_off.identities.empty());

  store::NewMessage unstated = whatsapp({}, "sem chaves");
  unstated.sender = "5511987654321@s.whatsapp.net";
  unstated.link_keys = Json::object();
  Decision by_sender = receive(kAnaWhatsApp, unstated);
  EXPECT_EQ(by_sender.verdict, Verdict::kLink) << by_sender.why;
  EXPECT_EQ(by_sender.case_id, open_case);
}

TEST_F(CaseMatching, OutboundMailInAClosedCasesThreadIsFiledThereWithoutReopeningIt) {
  settings_.closed_case = "reopen";
  start();
  const int64_t closed = new_case(kAna, {.addresses = Strings{"cliente@example.com"}});
  sent_mail(kAnaMail, "<question@host.example>", closed);
  ASSERT_TRUE(work_->update_case(closed, {.status = "closed"}, kAna));

  store::NewMessage m = mail("cliente@example.com", "Re: Pedido", {"<question@host.example>"});
  m.direction = "outbound";
  m.sender = "ana@company.example";
  m.recipient = "cliente@example.com";
  Decision d = receive(kAnaMail, m);

  EXPECT_EQ(d.case_id, closed) << d.why;
  EXPECT_EQ(d.method, "thread");
  EXPECT_FALSE(d.reopen);
  EXPECT_EQ(status_of(closed), "closed");
}

// --- LID first, phone later, as the WhatsApp plugin reports them ---------------------------------

// The plugin's link keys: {"phones": [the phone when known], "whatsapp_ids": [LID, phone JID…]};
// once the bridge learned which phone a LID stands for, messages by LID carry that phone too.
TEST_F(CaseMatching, LidOnlyContactMergesWithThePhoneContactAndTheMergeUndoes) {
  const int64_t phone_case = new_case(kAna, {.status = "closed", .phones = Strings{"+5511987654321"}});
  const int64_t phone_contact = *contact_of_case(phone_case);

  store::NewMessage by_lid = whatsapp({"201234567890123@lid"});
  by_lid.link_keys["phones"] = Json::array();
  Decision first = receive(kAnaWhatsApp, by_lid);
  const int64_t first_message = last_message_;
  ASSERT_EQ(first.verdict, Verdict::kNewCase) << first.why;
  const int64_t lid_contact = *first.contact_id;
  ASSERT_NE(lid_contact, phone_contact);

  store::NewMessage mapped = whatsapp({"201234567890123@lid"});
  mapped.link_keys["phones"] = {"+5511987654321"};
  Decision second = receive(kAnaWhatsApp, mapped);

  EXPECT_EQ(second.case_id, first.case_id) << second.why;
  EXPECT_EQ(case_of_message(first_message), first.case_id);
  EXPECT_EQ(contact_of_case(phone_case), contact_of_case(*first.case_id)) << "one contact";
  EXPECT_EQ(count("SELECT COUNT(DISTINCT contact_id) FROM contact_identities"), 1);
  const int64_t merge_id = count("SELECT MAX(id) FROM contact_merges");
  ASSERT_GT(merge_id, 0);

  ASSERT_TRUE(work_->undo_merge(merge_id, kAna));
  EXPECT_EQ(count("SELECT COUNT(DISTINCT contact_id) FROM contact_identities"), 2);
  EXPECT_EQ(contact_of_case(phone_case), phone_contact);
  EXPECT_EQ(contact_of_case(*first.case_id), lid_contact);
}

// --- Configuration choices not covered above ---------------------------------------------------

TEST_F(CaseMatching, DefaultRegionReadsNumbersWrittenWithoutACountryCode) {
  settings_.default_region = "PT";
  start();
  const int64_t case_id = new_case(kAna, {.phones = Strings{"912 345 678"}});

  Decision d = receive(kAnaWhatsApp, whatsapp({"351912345678@s.whatsapp.net"}));

  EXPECT_EQ(d.case_id, case_id) << d.why;
}

TEST_F(CaseMatching, WhatsAppRulesLeftEmptyNeverLinkByContact) {
  settings_.whatsapp_rules = {};
  start();
  const int64_t case_id = new_case(kAna, {.phones = Strings{"+5511987654321"}});

  Decision d = receive(kAnaWhatsApp, whatsapp({"5511987654321@s.whatsapp.net"}));

  EXPECT_EQ(d.verdict, Verdict::kNewCase) << d.why;
  EXPECT_NE(d.case_id, case_id);
}

TEST_F(CaseMatching, ConfiguredReplyPrefixesAreTheOnesStrippedFromTitles) {
  settings_.reply_prefixes = {"odp"};
  start();

  Decision polish = receive(kAnaMail, mail("a@example.com", "ODP: Zamówienie"));
  Decision english = receive(kAnaMail, mail("b@example.com", "Re: Order"));

  EXPECT_EQ(json_title(*polish.case_id), "Zamówienie");
  EXPECT_EQ(json_title(*english.case_id), "Re: Order");
}

}  // namespace
}  // namespace connector::cases::test
