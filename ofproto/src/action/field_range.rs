//! Bit ranges of fields, as Nicira's move/load/output_reg name them.

#[allow(unused_imports)]
use super::*;

/// A range of bits of a field: `NXM_NX_REG0[0..15]`. Only valid ranges can be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldRange {
    pub(crate) field: Field,
    pub(crate) ofs: u16,
    pub(crate) n_bits: u16,
    /// Whether the field is named by its NXM alias on the wire (what OVS does where one exists).
    pub(crate) nxm: bool,
}

impl FieldRange {
    /// Bits `ofs .. ofs + n_bits` of `field`. Fails when the range is empty or leaves the field.
    pub fn new(field: Field, ofs: u16, n_bits: u16) -> Result<Self, DecodeError> {
        let width = field.width() as u32 * 8;
        if n_bits == 0 || u32::from(ofs) + u32::from(n_bits) > width {
            return Err(DecodeError::Invalid {
                what: "field range",
                why: format!(
                    "bits {ofs}..{} do not lie within the {width} bits of {}",
                    u32::from(ofs) + u32::from(n_bits),
                    field.name()
                ),
                ofp: BAD_SET_ARGUMENT,
            });
        }
        Ok(FieldRange {
            field,
            ofs,
            n_bits,
            nxm: field.nxm_alias().is_some(),
        })
    }

    /// The whole field.
    pub fn whole(field: Field) -> Self {
        FieldRange {
            field,
            ofs: 0,
            n_bits: field.width() as u16 * 8,
            nxm: field.nxm_alias().is_some(),
        }
    }

    pub fn field(&self) -> Field {
        self.field
    }
    pub fn ofs(&self) -> u16 {
        self.ofs
    }
    pub fn n_bits(&self) -> u16 {
        self.n_bits
    }

    /// `(ofs << 6) | (n_bits - 1)`, the Nicira encoding.
    pub(crate) fn ofs_nbits(&self) -> u16 {
        (self.ofs << 6) | (self.n_bits - 1)
    }

    pub(crate) fn from_ofs_nbits(header: u32, ofs_nbits: u16) -> Result<Self, DecodeError> {
        Self::from_header(header, ofs_nbits >> 6, (ofs_nbits & 0x3f) + 1)
    }

    pub(crate) fn from_header(header: u32, ofs: u16, n_bits: u16) -> Result<Self, DecodeError> {
        let (field, nxm) = field_from_header(header)?;
        let mut r = FieldRange::new(field, ofs, n_bits)?;
        r.nxm = nxm;
        Ok(r)
    }

    pub(crate) fn header(&self) -> u32 {
        let mut h = OxmHeader::of(self.field, false);
        if self.nxm {
            if let Some((class, num)) = self.field.nxm_alias() {
                h.class = class;
                h.field = num;
            }
        }
        h.to_u32()
    }
}

/// The field a 32-bit NXM/OXM header names, and whether it was the NXM alias.
pub(crate) fn field_from_header(h: u32) -> Result<(Field, bool), DecodeError> {
    let h = OxmHeader::from_u32(h);
    if let Some(f) = Field::from_code(h.class, h.field) {
        return Ok((f, false));
    }
    Field::from_nxm_alias(h.class, h.field)
        .map(|f| (f, true))
        .ok_or_else(|| DecodeError::Invalid {
            what: "field reference",
            why: format!("unknown field class {:#06x} field {}", h.class, h.field),
            ofp: BAD_SET_ARGUMENT,
        })
}
