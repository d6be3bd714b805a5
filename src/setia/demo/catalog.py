"""Fixed data for the "Kopi Nusantara" demo: names, stores, menu, rewards.

Everything here is invented. Email addresses use the reserved ``example.*`` domains; phone
numbers are random but valid Indonesian mobile numbers (nothing is ever sent to them).
"""

from __future__ import annotations

from dataclasses import dataclass

TENANT_NAME = "Kopi Nusantara"
PROGRAM_NAME = "Kopi Nusantara Poin"
BRAND = "Kopi Nusantara"

MALE_NAMES = (
    "Adi", "Aditya", "Agus", "Andi", "Arif", "Asep", "Bagus", "Bayu", "Budi", "Cecep",
    "Dadang", "Dani", "Dimas", "Eko", "Fajar", "Farhan", "Galih", "Gilang", "Hendra",
    "Ilham", "Irfan", "Joko", "Kevin", "Lukman", "Muhammad", "Nanda", "Raka", "Rangga",
    "Reza", "Rizky", "Sandi", "Teguh", "Ujang", "Wahyu", "Yoga", "Yusuf", "Hafiz", "Ikhsan",
)  # fmt: skip
FEMALE_NAMES = (
    "Annisa", "Anggun", "Aulia", "Ayu", "Citra", "Dewi", "Dian", "Eka", "Euis", "Fitri",
    "Indah", "Intan", "Kartika", "Maya", "Mega", "Nabila", "Nadia", "Neng", "Nurul", "Putri",
    "Rani", "Ratna", "Rina", "Rosa", "Salsabila", "Sari", "Siti", "Tiara", "Vina", "Wulan",
    "Yuni", "Zahra", "Amelia", "Larasati",
)  # fmt: skip
FAMILY_NAMES = (
    "Pratama", "Saputra", "Wijaya", "Santoso", "Hidayat", "Kurniawan", "Setiawan", "Nugroho",
    "Gunawan", "Permana", "Ramadhan", "Hakim", "Siregar", "Nasution", "Harahap", "Simanjuntak",
    "Lubis", "Tanjung", "Firmansyah", "Maulana", "Hermawan", "Sutanto", "Halim", "Tan", "Lim",
    "Sembiring", "Ginting", "Manurung", "Suryadi", "Hutapea", "Sihombing", "Kusuma",
    "Wibowo", "Prasetyo", "Hardjono", "Sukmana", "Suhendar", "Rukmana",
)  # fmt: skip
FEMALE_FAMILY_NAMES = ("Rahayu", "Lestari", "Wulandari", "Susanti", "Purnamasari", "Handayani")
EMAIL_DOMAINS = ("example.com", "example.net", "example.org")
# Indonesian mobile prefixes (after +62): Telkomsel, Indosat, XL, Axis, Tri, Smartfren.
PHONE_PREFIXES = (
    "811", "812", "813", "821", "822", "823", "851", "852", "853", "814", "815", "816",
    "855", "856", "857", "858", "817", "818", "819", "859", "877", "878", "831", "832",
    "838", "895", "896", "897", "898", "899", "881", "882", "887", "888",
)  # fmt: skip
TAGS = ("mahasiswa", "kantor", "ojol", "freelancer", "keluarga")


@dataclass(frozen=True)
class Store:
    code: str
    short: str
    city: str
    name: str


STORES = (
    Store("bandung-dago", "DGO", "Bandung", "Kopi Nusantara Dago"),
    Store("bandung-braga", "BRG", "Bandung", "Kopi Nusantara Braga"),
    Store("bandung-buahbatu", "BBT", "Bandung", "Kopi Nusantara Buah Batu"),
    Store("jakarta-sudirman", "SDR", "Jakarta", "Kopi Nusantara Sudirman"),
    Store("jakarta-kemang", "KMG", "Jakarta", "Kopi Nusantara Kemang"),
    Store("jakarta-tebet", "TBT", "Jakarta", "Kopi Nusantara Tebet"),
)


@dataclass(frozen=True)
class Item:
    sku: str
    name: str
    category: str
    price: int
    weight: float = 1.0


DRINKS = (
    Item("KOPI-SUSU-AREN", "Es Kopi Susu Gula Aren", "coffee", 25_000, 10),
    Item("AMERICANO", "Americano", "coffee", 28_000, 5),
    Item("KOPI-TUBRUK", "Kopi Tubruk", "coffee", 15_000, 3),
    Item("CAFFE-LATTE", "Caffe Latte", "coffee", 32_000, 4),
    Item("CAPPUCCINO", "Cappuccino", "coffee", 32_000, 3),
    Item("ES-KOPI-PANDAN", "Es Kopi Pandan", "coffee", 27_000, 3),
    Item("V60-GAYO", "V60 Aceh Gayo", "coffee", 35_000, 1.5),
    Item("AFFOGATO", "Affogato", "coffee", 35_000, 1),
    Item("MATCHA-LATTE", "Matcha Latte", "non-coffee", 32_000, 2.5),
    Item("ES-COKELAT", "Es Cokelat", "non-coffee", 28_000, 2),
    Item("TEH-TARIK", "Teh Tarik", "non-coffee", 20_000, 2),
    Item("LYCHEE-TEA", "Es Teh Leci", "non-coffee", 24_000, 1.5),
)
BAKERY = (
    Item("CROISSANT", "Croissant Butter", "bakery", 28_000, 4),
    Item("PAIN-CHOCOLAT", "Pain au Chocolat", "bakery", 32_000, 2),
    Item("ROTI-BAKAR", "Roti Bakar Cokelat Keju", "bakery", 22_000, 4),
    Item("BANANA-BREAD", "Banana Bread", "bakery", 25_000, 2),
    Item("DONAT-GULA", "Donat Gula", "bakery", 12_000, 2),
)
FOOD = (
    Item("NASI-GORENG", "Nasi Goreng Kampung", "food", 38_000, 4),
    Item("MIE-GORENG", "Mie Goreng Telur", "food", 24_000, 3),
    Item("NASI-AYAM-SAMBAL", "Nasi Ayam Sambal Matah", "food", 42_000, 2),
)
SNACKS = (
    Item("PISANG-GORENG", "Pisang Goreng Keju", "snack", 20_000, 4),
    Item("CIRENG-RUJAK", "Cireng Rujak", "snack", 18_000, 3),
    Item("KENTANG-GORENG", "Kentang Goreng", "snack", 25_000, 2),
    Item("TAHU-CRISPY", "Tahu Crispy", "snack", 18_000, 2),
)
RETAIL = (
    Item("BEANS-GAYO-200", "Biji Kopi Aceh Gayo 200 g", "beans", 95_000, 3),
    Item("BEANS-JAVA-200", "Biji Kopi Java Preanger 200 g", "beans", 90_000, 3),
    Item("TUMBLER", "Tumbler Kopi Nusantara", "merchandise", 150_000, 1),
)


@dataclass(frozen=True)
class Reward:
    sku: str
    name: str
    points: int


# Priced at the program's cost of Rp 10 per point.
REWARDS = (
    Reward("RW-KOPI-AREN", "Gratis Es Kopi Susu Gula Aren", 2_500),
    Reward("RW-POTONGAN-10K", "Potongan Rp 10.000", 1_000),
    Reward("RW-POTONGAN-5K", "Potongan Rp 5.000", 500),
)

PAYMENTS = {
    "pos": (("qris", 40), ("cash", 20), ("debit", 12), ("gopay", 12), ("ovo", 8), ("shopeepay", 8)),
    "app": (("gopay", 35), ("ovo", 25), ("shopeepay", 25), ("dana", 15)),
    "gofood": (("gopay", 100),),
    "grabfood": (("ovo", 100),),
}
REFUND_REASONS = {
    "pos": ("salah pesanan", "minuman tumpah", "stok habis"),
    "app": ("pesanan dibatalkan", "stok habis", "salah pesanan"),
    "gofood": ("pesanan dibatalkan pengemudi", "item tidak tersedia", "pesanan terlambat"),
    "grabfood": ("pesanan dibatalkan pengemudi", "item tidak tersedia", "pesanan terlambat"),
}

# Visits by hour of day, Jakarta time: the morning coffee peak, lunch, the afternoon break.
WEEKDAY_HOURS = {
    6: 3, 7: 9, 8: 13, 9: 10, 10: 6, 11: 5, 12: 6, 13: 7, 14: 6, 15: 7, 16: 8, 17: 6,
    18: 4, 19: 5, 20: 4, 21: 2,
}  # fmt: skip
WEEKEND_HOURS = {
    7: 2, 8: 4, 9: 7, 10: 9, 11: 9, 12: 8, 13: 8, 14: 8, 15: 9, 16: 9, 17: 7, 18: 5,
    19: 6, 20: 5, 21: 3,
}  # fmt: skip
DELIVERY_HOURS = {
    9: 2, 10: 4, 11: 8, 12: 12, 13: 10, 14: 8, 15: 9, 16: 9, 17: 6, 18: 5, 19: 6, 20: 5,
    21: 3,
}  # fmt: skip
