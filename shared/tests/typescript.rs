//! Generates `web/src/generated/protocol.ts` from the Rust types and fails when the committed
//! file is stale. Regenerate with `CONFAB_UPDATE_TS=1 cargo test -p confab-shared --features ts`.
#![cfg(feature = "ts")]

use confab_shared::{admin, api, conversation, error, events, ids, notify, protocol};
use ts_rs::TS;

fn generated() -> String {
    let decls = [
        ids::UserId::decl(),
        ids::RoomId::decl(),
        ids::MessageId::decl(),
        ids::SessionId::decl(),
        ids::ClientMsgId::decl(),
        ids::ClientRef::decl(),
        error::ErrorCode::decl(),
        protocol::UserPublic::decl(),
        protocol::AttachmentRef::decl(),
        protocol::Attachment::decl(),
        conversation::Visibility::decl(),
        conversation::RoomKind::decl(),
        conversation::RoomRole::decl(),
        conversation::Emoji::decl(),
        conversation::ReplyTo::decl(),
        conversation::ReactionCount::decl(),
        protocol::ChatMessage::decl(),
        events::RoomEvent::decl(),
        events::MessageEdited::decl(),
        events::MessageDeleted::decl(),
        events::ReactionChanged::decl(),
        events::PinChanged::decl(),
        events::MemberAdded::decl(),
        events::MemberRemoved::decl(),
        events::RoleChanged::decl(),
        events::RoomUpdated::decl(),
        protocol::ClientFrame::decl(),
        protocol::ServerFrame::decl(),
        api::ErrorBody::decl(),
        api::ErrorDetail::decl(),
        api::RegisterRequest::decl(),
        api::RegistrationPending::decl(),
        api::LoginRequest::decl(),
        api::ChangePasswordRequest::decl(),
        api::Me::decl(),
        api::UpdateMeRequest::decl(),
        api::CreateRoomRequest::decl(),
        api::UpdateRoomRequest::decl(),
        api::UserRequest::decl(),
        api::RoleRequest::decl(),
        api::CreateDmRequest::decl(),
        api::UserPage::decl(),
        api::RoomScope::decl(),
        api::Room::decl(),
        api::RoomPage::decl(),
        api::Member::decl(),
        api::MessagePage::decl(),
        api::Ban::decl(),
        api::Pin::decl(),
        api::Receipt::decl(),
        api::ExcerptPart::decl(),
        api::SearchHit::decl(),
        api::SearchPage::decl(),
        api::EditMessageRequest::decl(),
        api::ChangeAck::decl(),
        api::EventPage::decl(),
        api::ReadRequest::decl(),
        api::LinkPreview::decl(),
        api::UploadTicketRequest::decl(),
        api::UploadTicket::decl(),
        notify::NotificationLevel::decl(),
        notify::PushKey::decl(),
        notify::PushKeys::decl(),
        notify::PushSubscriptionRequest::decl(),
        notify::PushUnsubscribeRequest::decl(),
        notify::NotificationLevelRequest::decl(),
        notify::RoomNotificationLevel::decl(),
        notify::NotificationSettings::decl(),
        notify::PushPayload::decl(),
        admin::SiteRole::decl(),
        admin::CreateInviteRequest::decl(),
        admin::Invite::decl(),
        admin::AdminUser::decl(),
        admin::AdminUserPage::decl(),
        admin::UpdateUserRequest::decl(),
        admin::PasswordReset::decl(),
        admin::AuditEntry::decl(),
        admin::AuditPage::decl(),
        admin::TokenScope::decl(),
        admin::CreateTokenRequest::decl(),
        admin::TokenCreated::decl(),
        admin::TokenInfo::decl(),
        admin::CreateBotRequest::decl(),
        admin::Bot::decl(),
        admin::PostMessageRequest::decl(),
        admin::CreateWebhookRequest::decl(),
        admin::Webhook::decl(),
        admin::WebhookPost::decl(),
    ];
    let mut out = String::from(
        "// Generated from the Rust crate confab-shared by shared/tests/typescript.rs. Do not edit.\n\
         // Regenerate: CONFAB_UPDATE_TS=1 cargo test -p confab-shared --features ts\n\n",
    );
    for d in decls {
        out.push_str("export ");
        out.push_str(&d);
        out.push_str("\n\n");
    }
    out
}

#[test]
fn typescript_definitions_are_fresh() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../web/src/generated/protocol.ts"
    );
    let want = generated();
    if std::env::var_os("CONFAB_UPDATE_TS").is_some() {
        std::fs::write(path, &want).expect("write protocol.ts");
        return;
    }
    let have = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        have == want,
        "web/src/generated/protocol.ts is stale: run CONFAB_UPDATE_TS=1 cargo test -p confab-shared --features ts"
    );
}
