//! AVP keys this implementation builds and looks up (RFC 6733 §4.5; TS 29.229 §6.3;
//! RFC 4740 §4). The dictionary files carry the same codes for decoding; the
//! `codes_agree_with_dictionary` test keeps the two in step.

use super::avp::AvpKey;

/// User-Name (1).
pub const USER_NAME: AvpKey = AvpKey::base(1, true);
/// Proxy-State (33).
pub const PROXY_STATE: AvpKey = AvpKey::base(33, true);
/// Host-Ip-Address (257).
pub const HOST_IP_ADDRESS: AvpKey = AvpKey::base(257, true);
/// Auth-Application-Id (258).
pub const AUTH_APPLICATION_ID: AvpKey = AvpKey::base(258, true);
/// Acct-Application-Id (259).
pub const ACCT_APPLICATION_ID: AvpKey = AvpKey::base(259, true);
/// Vendor-Specific-Application-Id (260).
pub const VENDOR_SPECIFIC_APPLICATION_ID: AvpKey = AvpKey::base(260, true);
/// Session-Id (263).
pub const SESSION_ID: AvpKey = AvpKey::base(263, true);
/// Origin-Host (264).
pub const ORIGIN_HOST: AvpKey = AvpKey::base(264, true);
/// Supported-Vendor-Id (265).
pub const SUPPORTED_VENDOR_ID: AvpKey = AvpKey::base(265, true);
/// Vendor-Id (266).
pub const VENDOR_ID: AvpKey = AvpKey::base(266, true);
/// Firmware-Revision (267).
pub const FIRMWARE_REVISION: AvpKey = AvpKey::base(267, false);
/// Result-Code (268).
pub const RESULT_CODE: AvpKey = AvpKey::base(268, true);
/// Product-Name (269).
pub const PRODUCT_NAME: AvpKey = AvpKey::base(269, false);
/// Disconnect-Cause (273).
pub const DISCONNECT_CAUSE: AvpKey = AvpKey::base(273, true);
/// Auth-Session-State (277).
pub const AUTH_SESSION_STATE: AvpKey = AvpKey::base(277, true);
/// Origin-State-Id (278).
pub const ORIGIN_STATE_ID: AvpKey = AvpKey::base(278, true);
/// Failed-Avp (279).
pub const FAILED_AVP: AvpKey = AvpKey::base(279, true);
/// Proxy-Host (280).
pub const PROXY_HOST: AvpKey = AvpKey::base(280, true);
/// Error-Message (281).
pub const ERROR_MESSAGE: AvpKey = AvpKey::base(281, false);
/// Route-Record (282).
pub const ROUTE_RECORD: AvpKey = AvpKey::base(282, true);
/// Destination-Realm (283).
pub const DESTINATION_REALM: AvpKey = AvpKey::base(283, true);
/// Proxy-Info (284).
pub const PROXY_INFO: AvpKey = AvpKey::base(284, true);
/// Destination-Host (293).
pub const DESTINATION_HOST: AvpKey = AvpKey::base(293, true);
/// Error-Reporting-Host (294).
pub const ERROR_REPORTING_HOST: AvpKey = AvpKey::base(294, false);
/// Origin-Realm (296).
pub const ORIGIN_REALM: AvpKey = AvpKey::base(296, true);
/// Experimental-Result (297).
pub const EXPERIMENTAL_RESULT: AvpKey = AvpKey::base(297, true);
/// Experimental-Result-Code (298).
pub const EXPERIMENTAL_RESULT_CODE: AvpKey = AvpKey::base(298, true);
/// Inband-Security-Id (299).
pub const INBAND_SECURITY_ID: AvpKey = AvpKey::base(299, true);
/// Digest-Realm (104).
pub const DIGEST_REALM: AvpKey = AvpKey::base(104, true);
/// Digest-Qop (110).
pub const DIGEST_QOP: AvpKey = AvpKey::base(110, true);
/// Digest-Algorithm (111).
pub const DIGEST_ALGORITHM: AvpKey = AvpKey::base(111, true);
/// Digest-Ha1 (121).
pub const DIGEST_HA1: AvpKey = AvpKey::base(121, true);
/// Visited-Network-Identifier (600, 3GPP).
pub const VISITED_NETWORK_IDENTIFIER: AvpKey = AvpKey::tgpp(600, true);
/// Public-Identity (601, 3GPP).
pub const PUBLIC_IDENTITY: AvpKey = AvpKey::tgpp(601, true);
/// Server-Name (602, 3GPP).
pub const SERVER_NAME: AvpKey = AvpKey::tgpp(602, true);
/// Server-Capabilities (603, 3GPP).
pub const SERVER_CAPABILITIES: AvpKey = AvpKey::tgpp(603, true);
/// Mandatory-Capability (604, 3GPP).
pub const MANDATORY_CAPABILITY: AvpKey = AvpKey::tgpp(604, true);
/// Optional-Capability (605, 3GPP).
pub const OPTIONAL_CAPABILITY: AvpKey = AvpKey::tgpp(605, true);
/// User-Data (606, 3GPP).
pub const USER_DATA: AvpKey = AvpKey::tgpp(606, true);
/// Sip-Number-Auth-Items (607, 3GPP).
pub const SIP_NUMBER_AUTH_ITEMS: AvpKey = AvpKey::tgpp(607, true);
/// Sip-Authentication-Scheme (608, 3GPP).
pub const SIP_AUTHENTICATION_SCHEME: AvpKey = AvpKey::tgpp(608, true);
/// Sip-Authenticate (609, 3GPP).
pub const SIP_AUTHENTICATE: AvpKey = AvpKey::tgpp(609, true);
/// Sip-Authorization (610, 3GPP).
pub const SIP_AUTHORIZATION: AvpKey = AvpKey::tgpp(610, true);
/// Sip-Authentication-Context (611, 3GPP).
pub const SIP_AUTHENTICATION_CONTEXT: AvpKey = AvpKey::tgpp(611, true);
/// Sip-Auth-Data-Item (612, 3GPP).
pub const SIP_AUTH_DATA_ITEM: AvpKey = AvpKey::tgpp(612, true);
/// Sip-Item-Number (613, 3GPP).
pub const SIP_ITEM_NUMBER: AvpKey = AvpKey::tgpp(613, true);
/// Server-Assignment-Type (614, 3GPP).
pub const SERVER_ASSIGNMENT_TYPE: AvpKey = AvpKey::tgpp(614, true);
/// Deregistration-Reason (615, 3GPP).
pub const DEREGISTRATION_REASON: AvpKey = AvpKey::tgpp(615, true);
/// Reason-Code (616, 3GPP).
pub const REASON_CODE: AvpKey = AvpKey::tgpp(616, true);
/// Reason-Info (617, 3GPP).
pub const REASON_INFO: AvpKey = AvpKey::tgpp(617, true);
/// Charging-Information (618, 3GPP).
pub const CHARGING_INFORMATION: AvpKey = AvpKey::tgpp(618, true);
/// Primary-Event-Charging-Function-Name (619, 3GPP).
pub const PRIMARY_EVENT_CHARGING_FUNCTION_NAME: AvpKey = AvpKey::tgpp(619, true);
/// Secondary-Event-Charging-Function-Name (620, 3GPP).
pub const SECONDARY_EVENT_CHARGING_FUNCTION_NAME: AvpKey = AvpKey::tgpp(620, true);
/// Primary-Charging-Collection-Function-Name (621, 3GPP).
pub const PRIMARY_CHARGING_COLLECTION_FUNCTION_NAME: AvpKey = AvpKey::tgpp(621, true);
/// Secondary-Charging-Collection-Function-Name (622, 3GPP).
pub const SECONDARY_CHARGING_COLLECTION_FUNCTION_NAME: AvpKey = AvpKey::tgpp(622, true);
/// User-Authorization-Type (623, 3GPP).
pub const USER_AUTHORIZATION_TYPE: AvpKey = AvpKey::tgpp(623, true);
/// User-Data-Already-Available (624, 3GPP).
pub const USER_DATA_ALREADY_AVAILABLE: AvpKey = AvpKey::tgpp(624, true);
/// Confidentiality-Key (625, 3GPP).
pub const CONFIDENTIALITY_KEY: AvpKey = AvpKey::tgpp(625, true);
/// Integrity-Key (626, 3GPP).
pub const INTEGRITY_KEY: AvpKey = AvpKey::tgpp(626, true);
/// Supported-Features (628, 3GPP).
pub const SUPPORTED_FEATURES: AvpKey = AvpKey::tgpp(628, false);
/// Feature-List-Id (629, 3GPP).
pub const FEATURE_LIST_ID: AvpKey = AvpKey::tgpp(629, false);
/// Feature-List (630, 3GPP).
pub const FEATURE_LIST: AvpKey = AvpKey::tgpp(630, false);
/// Associated-Identities (632, 3GPP).
pub const ASSOCIATED_IDENTITIES: AvpKey = AvpKey::tgpp(632, false);
/// Originating-Request (633, 3GPP).
pub const ORIGINATING_REQUEST: AvpKey = AvpKey::tgpp(633, true);
/// Wildcarded-Public-Identity (634, 3GPP).
pub const WILDCARDED_PUBLIC_IDENTITY: AvpKey = AvpKey::tgpp(634, false);
/// Sip-Digest-Authenticate (635, 3GPP).
pub const SIP_DIGEST_AUTHENTICATE: AvpKey = AvpKey::tgpp(635, false);
/// Uar-Flags (637, 3GPP).
pub const UAR_FLAGS: AvpKey = AvpKey::tgpp(637, false);
/// Multiple-Registration-Indication (648, 3GPP).
pub const MULTIPLE_REGISTRATION_INDICATION: AvpKey = AvpKey::tgpp(648, false);
/// Lia-Flags (653, 3GPP).
pub const LIA_FLAGS: AvpKey = AvpKey::tgpp(653, false);
/// Sar-Flags (655, 3GPP).
pub const SAR_FLAGS: AvpKey = AvpKey::tgpp(655, false);
/// Rtr-Flags (659, 3GPP).
pub const RTR_FLAGS: AvpKey = AvpKey::tgpp(659, false);
/// Kamailio's Call-Id AVP (494, vendor 50), sent without the M bit.
pub const KAMAILIO_CALL_ID: AvpKey = AvpKey {
    code: 494,
    vendor: 50,
    mandatory: false,
};

/// Every key above, for the dictionary agreement test.
pub const ALL: &[AvpKey] = &[
    USER_NAME,
    PROXY_STATE,
    HOST_IP_ADDRESS,
    AUTH_APPLICATION_ID,
    ACCT_APPLICATION_ID,
    VENDOR_SPECIFIC_APPLICATION_ID,
    SESSION_ID,
    ORIGIN_HOST,
    SUPPORTED_VENDOR_ID,
    VENDOR_ID,
    FIRMWARE_REVISION,
    RESULT_CODE,
    PRODUCT_NAME,
    DISCONNECT_CAUSE,
    AUTH_SESSION_STATE,
    ORIGIN_STATE_ID,
    FAILED_AVP,
    PROXY_HOST,
    ERROR_MESSAGE,
    ROUTE_RECORD,
    DESTINATION_REALM,
    PROXY_INFO,
    DESTINATION_HOST,
    ERROR_REPORTING_HOST,
    ORIGIN_REALM,
    EXPERIMENTAL_RESULT,
    EXPERIMENTAL_RESULT_CODE,
    INBAND_SECURITY_ID,
    DIGEST_REALM,
    DIGEST_QOP,
    DIGEST_ALGORITHM,
    DIGEST_HA1,
    VISITED_NETWORK_IDENTIFIER,
    PUBLIC_IDENTITY,
    SERVER_NAME,
    SERVER_CAPABILITIES,
    MANDATORY_CAPABILITY,
    OPTIONAL_CAPABILITY,
    USER_DATA,
    SIP_NUMBER_AUTH_ITEMS,
    SIP_AUTHENTICATION_SCHEME,
    SIP_AUTHENTICATE,
    SIP_AUTHORIZATION,
    SIP_AUTHENTICATION_CONTEXT,
    SIP_AUTH_DATA_ITEM,
    SIP_ITEM_NUMBER,
    SERVER_ASSIGNMENT_TYPE,
    DEREGISTRATION_REASON,
    REASON_CODE,
    REASON_INFO,
    CHARGING_INFORMATION,
    PRIMARY_EVENT_CHARGING_FUNCTION_NAME,
    SECONDARY_EVENT_CHARGING_FUNCTION_NAME,
    PRIMARY_CHARGING_COLLECTION_FUNCTION_NAME,
    SECONDARY_CHARGING_COLLECTION_FUNCTION_NAME,
    USER_AUTHORIZATION_TYPE,
    USER_DATA_ALREADY_AVAILABLE,
    CONFIDENTIALITY_KEY,
    INTEGRITY_KEY,
    SUPPORTED_FEATURES,
    FEATURE_LIST_ID,
    FEATURE_LIST,
    ASSOCIATED_IDENTITIES,
    ORIGINATING_REQUEST,
    WILDCARDED_PUBLIC_IDENTITY,
    SIP_DIGEST_AUTHENTICATE,
    UAR_FLAGS,
    MULTIPLE_REGISTRATION_INDICATION,
    LIA_FLAGS,
    SAR_FLAGS,
    RTR_FLAGS,
    KAMAILIO_CALL_ID,
];
