//! The NACE Rev. 2 sections (A to U) and divisions (01 to 99) with their
//! English names, as Regulation (EC) No 1893/2006 publishes them.

/// A section: its letter, its name and its divisions with their names.
pub(super) struct Section {
    pub letter: char,
    pub name: &'static str,
    pub divisions: &'static [(u8, &'static str)],
}

pub(super) const SECTIONS: &[Section] = &[
    Section {
        letter: 'A',
        name: "Agriculture, forestry and fishing",
        divisions: &[
            (
                1,
                "Crop and animal production, hunting and related service activities",
            ),
            (2, "Forestry and logging"),
            (3, "Fishing and aquaculture"),
        ],
    },
    Section {
        letter: 'B',
        name: "Mining and quarrying",
        divisions: &[
            (5, "Mining of coal and lignite"),
            (6, "Extraction of crude petroleum and natural gas"),
            (7, "Mining of metal ores"),
            (8, "Other mining and quarrying"),
            (9, "Mining support service activities"),
        ],
    },
    Section {
        letter: 'C',
        name: "Manufacturing",
        divisions: &[
            (10, "Manufacture of food products"),
            (11, "Manufacture of beverages"),
            (12, "Manufacture of tobacco products"),
            (13, "Manufacture of textiles"),
            (14, "Manufacture of wearing apparel"),
            (15, "Manufacture of leather and related products"),
            (
                16,
                "Manufacture of wood and of products of wood and cork, except furniture; \
                 manufacture of articles of straw and plaiting materials",
            ),
            (17, "Manufacture of paper and paper products"),
            (18, "Printing and reproduction of recorded media"),
            (19, "Manufacture of coke and refined petroleum products"),
            (20, "Manufacture of chemicals and chemical products"),
            (
                21,
                "Manufacture of basic pharmaceutical products and pharmaceutical preparations",
            ),
            (22, "Manufacture of rubber and plastic products"),
            (23, "Manufacture of other non-metallic mineral products"),
            (24, "Manufacture of basic metals"),
            (
                25,
                "Manufacture of fabricated metal products, except machinery and equipment",
            ),
            (
                26,
                "Manufacture of computer, electronic and optical products",
            ),
            (27, "Manufacture of electrical equipment"),
            (28, "Manufacture of machinery and equipment n.e.c."),
            (
                29,
                "Manufacture of motor vehicles, trailers and semi-trailers",
            ),
            (30, "Manufacture of other transport equipment"),
            (31, "Manufacture of furniture"),
            (32, "Other manufacturing"),
            (33, "Repair and installation of machinery and equipment"),
        ],
    },
    Section {
        letter: 'D',
        name: "Electricity, gas, steam and air conditioning supply",
        divisions: &[(35, "Electricity, gas, steam and air conditioning supply")],
    },
    Section {
        letter: 'E',
        name: "Water supply; sewerage, waste management and remediation activities",
        divisions: &[
            (36, "Water collection, treatment and supply"),
            (37, "Sewerage"),
            (
                38,
                "Waste collection, treatment and disposal activities; materials recovery",
            ),
            (
                39,
                "Remediation activities and other waste management services",
            ),
        ],
    },
    Section {
        letter: 'F',
        name: "Construction",
        divisions: &[
            (41, "Construction of buildings"),
            (42, "Civil engineering"),
            (43, "Specialised construction activities"),
        ],
    },
    Section {
        letter: 'G',
        name: "Wholesale and retail trade; repair of motor vehicles and motorcycles",
        divisions: &[
            (
                45,
                "Wholesale and retail trade and repair of motor vehicles and motorcycles",
            ),
            (
                46,
                "Wholesale trade, except of motor vehicles and motorcycles",
            ),
            (47, "Retail trade, except of motor vehicles and motorcycles"),
        ],
    },
    Section {
        letter: 'H',
        name: "Transportation and storage",
        divisions: &[
            (49, "Land transport and transport via pipelines"),
            (50, "Water transport"),
            (51, "Air transport"),
            (52, "Warehousing and support activities for transportation"),
            (53, "Postal and courier activities"),
        ],
    },
    Section {
        letter: 'I',
        name: "Accommodation and food service activities",
        divisions: &[
            (55, "Accommodation"),
            (56, "Food and beverage service activities"),
        ],
    },
    Section {
        letter: 'J',
        name: "Information and communication",
        divisions: &[
            (58, "Publishing activities"),
            (
                59,
                "Motion picture, video and television programme production, sound recording \
                 and music publishing activities",
            ),
            (60, "Programming and broadcasting activities"),
            (61, "Telecommunications"),
            (
                62,
                "Computer programming, consultancy and related activities",
            ),
            (63, "Information service activities"),
        ],
    },
    Section {
        letter: 'K',
        name: "Financial and insurance activities",
        divisions: &[
            (
                64,
                "Financial service activities, except insurance and pension funding",
            ),
            (
                65,
                "Insurance, reinsurance and pension funding, except compulsory social security",
            ),
            (
                66,
                "Activities auxiliary to financial services and insurance activities",
            ),
        ],
    },
    Section {
        letter: 'L',
        name: "Real estate activities",
        divisions: &[(68, "Real estate activities")],
    },
    Section {
        letter: 'M',
        name: "Professional, scientific and technical activities",
        divisions: &[
            (69, "Legal and accounting activities"),
            (
                70,
                "Activities of head offices; management consultancy activities",
            ),
            (
                71,
                "Architectural and engineering activities; technical testing and analysis",
            ),
            (72, "Scientific research and development"),
            (73, "Advertising and market research"),
            (
                74,
                "Other professional, scientific and technical activities",
            ),
            (75, "Veterinary activities"),
        ],
    },
    Section {
        letter: 'N',
        name: "Administrative and support service activities",
        divisions: &[
            (77, "Rental and leasing activities"),
            (78, "Employment activities"),
            (
                79,
                "Travel agency, tour operator and other reservation service and related \
                 activities",
            ),
            (80, "Security and investigation activities"),
            (81, "Services to buildings and landscape activities"),
            (
                82,
                "Office administrative, office support and other business support activities",
            ),
        ],
    },
    Section {
        letter: 'O',
        name: "Public administration and defence; compulsory social security",
        divisions: &[(
            84,
            "Public administration and defence; compulsory social security",
        )],
    },
    Section {
        letter: 'P',
        name: "Education",
        divisions: &[(85, "Education")],
    },
    Section {
        letter: 'Q',
        name: "Human health and social work activities",
        divisions: &[
            (86, "Human health activities"),
            (87, "Residential care activities"),
            (88, "Social work activities without accommodation"),
        ],
    },
    Section {
        letter: 'R',
        name: "Arts, entertainment and recreation",
        divisions: &[
            (90, "Creative, arts and entertainment activities"),
            (
                91,
                "Libraries, archives, museums and other cultural activities",
            ),
            (92, "Gambling and betting activities"),
            (
                93,
                "Sports activities and amusement and recreation activities",
            ),
        ],
    },
    Section {
        letter: 'S',
        name: "Other service activities",
        divisions: &[
            (94, "Activities of membership organisations"),
            (95, "Repair of computers and personal and household goods"),
            (96, "Other personal service activities"),
        ],
    },
    Section {
        letter: 'T',
        name: "Activities of households as employers; undifferentiated goods- and \
               services-producing activities of households for own use",
        divisions: &[
            (
                97,
                "Activities of households as employers of domestic personnel",
            ),
            (
                98,
                "Undifferentiated goods- and services-producing activities of private \
                 households for own use",
            ),
        ],
    },
    Section {
        letter: 'U',
        name: "Activities of extraterritorial organisations and bodies",
        divisions: &[(
            99,
            "Activities of extraterritorial organisations and bodies",
        )],
    },
];
