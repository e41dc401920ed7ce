use crate::store::Service;
pub fn subscription_xml(impi: &str, service: &Service, first: Option<&str>) -> String {
    let _ = (impi, service, first);
    String::new()
}
