"""EXAMPLE DATA — the Grand Est Touraine action plan, built from the two source articles.

Facts from the articles: the 4 communautés de communes, the 3 business clubs (ERET, AICR, GEIDA),
the partners, the 4 phase-2 axes, and the actions they name (8 with a firm commitment). Everything
else — people, e-mail addresses (`.example` domains), amounts, dates, milestones — is invented
to make a realistic plan for demonstrations and tests. It is not the territory's real plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from flows.usecases.budget.calendar import working_day_on_or_after
from models.lifecycle import State
from models.tables import (
    ActionPartner,
    ActionSheet,
    BudgetLine,
    Funding,
    Indicator,
    Milestone,
    Organisation,
    Person,
    PersonRole,
    Territory,
)
from models.uow import UnitOfWork
from models.vocabulary import Axis, BudgetKind, OrganisationKind, Priority, Role

TERRITORY_CODE = "grand-est-touraine"

K = OrganisationKind
ORGANISATIONS: list[tuple[str, str, OrganisationKind, bool]] = [
    # name, short name, kind, is a funder
    ("Communauté de communes Touraine-Est Vallées", "CC TEV", K.COMMUNAUTE_DE_COMMUNES, True),
    (
        "Communauté de communes Autour de Chenonceaux Bléré-Val de Cher",
        "CC BVC",
        K.COMMUNAUTE_DE_COMMUNES,
        True,
    ),
    (
        "Communauté de communes du Castelrenaudais",
        "CC Castelrenaudais",
        K.COMMUNAUTE_DE_COMMUNES,
        True,
    ),
    ("Communauté de communes du Val d'Amboise", "CC Val d'Amboise", K.COMMUNAUTE_DE_COMMUNES, True),
    ("ERET", "ERET", K.CLUB_ENTREPRISES, False),
    ("Association des industriels du Castelrenaudais", "AICR", K.CLUB_ENTREPRISES, False),
    ("GEIDA", "GEIDA", K.CLUB_ENTREPRISES, False),
    ("État", "État", K.ETAT, True),
    ("Région Centre-Val de Loire", "Région", K.REGION, True),
    ("Agence nationale de la cohésion des territoires", "ANCT", K.AGENCE_NATIONALE, True),
    ("ADEME", "ADEME", K.AGENCE_NATIONALE, True),
    ("France Travail", "France Travail", K.EMPLOI_FORMATION, False),
    ("UIMM Touraine", "UIMM", K.EMPLOI_FORMATION, False),
    ("OPCO 2i", "OPCO 2i", K.EMPLOI_FORMATION, True),
    ("Mission Locale", "Mission Locale", K.EMPLOI_FORMATION, False),
]

# full name, e-mail, organisation short name, position, roles
PEOPLE: list[tuple[str, str, str, str, tuple[Role, ...]]] = [
    (
        "Claire Moreau",
        "claire.moreau@grand-est-touraine.example",
        "CC Val d'Amboise",
        "Chargée de mission Territoire d'industrie",
        (Role.COORDINATOR, Role.COPIL_MEMBER),
    ),
    (
        "Jean Lefèvre",
        "jean.lefevre@cc-castelrenaudais.example",
        "CC Castelrenaudais",
        "Élu référent, co-pilote du binôme",
        (Role.COPIL_MEMBER,),
    ),
    (
        "Hélène Garnier",
        "helene.garnier@aicr.example",
        "AICR",
        "Industrielle référente, co-pilote du binôme",
        (Role.COPIL_MEMBER, Role.PILOT),
    ),
    (
        "Marc Aubert",
        "marc.aubert@prefecture.example",
        "État",
        "Sous-préfet, référent État",
        (Role.COPIL_MEMBER,),
    ),
    (
        "Sophie Bernard",
        "sophie.bernard@region-centre.example",
        "Région",
        "Chargée d'affaires économiques",
        (Role.COPIL_MEMBER,),
    ),
    (
        "Karim Haddad",
        "karim.haddad@cc-tev.example",
        "CC TEV",
        "Directeur du développement économique",
        (Role.COPIL_MEMBER, Role.PILOT),
    ),
    (
        "Isabelle Roux",
        "isabelle.roux@uimm-touraine.example",
        "UIMM",
        "Responsable emploi-formation",
        (Role.PILOT,),
    ),
    ("Thomas Petit", "thomas.petit@eret.example", "ERET", "Animateur du club ERET", (Role.PILOT,)),
    (
        "Nadia Benali",
        "nadia.benali@cc-bvc.example",
        "CC BVC",
        "Chargée de l'immobilier d'entreprise",
        (Role.PILOT,),
    ),
    (
        "Lucas Fontaine",
        "lucas.fontaine@ademe.example",
        "ADEME",
        "Ingénieur transition écologique",
        (Role.PILOT, Role.COPIL_MEMBER),
    ),
]


@dataclass
class ExampleAction:
    number: str
    title: str
    axis: Axis
    pilot: str  # e-mail
    firm: bool
    description: str
    start: date
    end: date
    budget: dict[tuple[int, BudgetKind], str]
    # (funder short name, year) -> amount requested: per year, as the budget lines are
    funding: dict[tuple[str, int], str]
    milestones: list[tuple[str, date]] = field(default_factory=list)
    indicators: list[tuple[str, str, str]] = field(default_factory=list)  # name, unit, target
    partners: tuple[str, ...] = ()
    priority: Priority = Priority.MEDIUM


INV, FON = BudgetKind.INVESTISSEMENT, BudgetKind.FONCTIONNEMENT
HG = "helene.garnier@aicr.example"
KH = "karim.haddad@cc-tev.example"
IR = "isabelle.roux@uimm-touraine.example"
TP = "thomas.petit@eret.example"
NB = "nadia.benali@cc-bvc.example"
LF = "lucas.fontaine@ademe.example"

ACTIONS: list[ExampleAction] = [
    ExampleAction(
        "FA-01",
        "Usine-témoin de l'industrie du futur",
        Axis.INNOVATION,
        HG,
        True,
        "Aménager une usine-témoin pour aider les TPE-PME à comprendre les technologies de "
        "l'industrie du futur.",
        date(2024, 2, 1),
        date(2025, 12, 31),
        {(2024, INV): "350000.00", (2024, FON): "40000.00", (2025, INV): "150000.00"},
        {
            ("Région", 2024): "180000.00",
            ("État", 2024): "110000.00",
            ("CC Castelrenaudais", 2024): "100000.00",
            ("Région", 2025): "70000.00",
            ("État", 2025): "40000.00",
            ("CC Castelrenaudais", 2025): "40000.00",
        },
        [
            ("Choix du site et du bâtiment", date(2024, 4, 30)),
            ("Installation des démonstrateurs", date(2024, 11, 15)),
            ("Ouverture aux entreprises", date(2025, 3, 3)),
        ],
        [("Entreprises accueillies", "entreprises", "60")],
        ("AICR", "UIMM"),
        Priority.HIGH,
    ),
    ExampleAction(
        "FA-02",
        "Industry-lab au CFAI d'Amboise",
        Axis.COMPETENCES,
        IR,
        True,
        "Créer un « industry-lab » au CFAI d'Amboise pour former aux nouveaux métiers.",
        date(2024, 3, 1),
        date(2025, 6, 30),
        {(2024, INV): "180000.00", (2024, FON): "25000.00"},
        {("Région", 2024): "120000.00", ("OPCO 2i", 2024): "85000.00"},
        [
            ("Cahier des charges des équipements", date(2024, 5, 15)),
            ("Premières sessions de formation", date(2024, 10, 1)),
        ],
        [("Apprentis formés par an", "personnes", "80")],
        ("UIMM", "OPCO 2i"),
        Priority.HIGH,
    ),
    ExampleAction(
        "FA-03",
        "Lieu d'accueil de start-up en intelligence artificielle et big data",
        Axis.INNOVATION,
        KH,
        True,
        "Ouvrir un lieu d'accueil pour des start-up axées sur l'intelligence artificielle et "
        "le big data, en lien avec les industriels du territoire.",
        date(2024, 4, 2),
        date(2025, 12, 31),
        {(2024, INV): "90000.00", (2024, FON): "30000.00", (2025, FON): "30000.00"},
        {
            ("ANCT", 2024): "45000.00",
            ("CC TEV", 2024): "75000.00",
            ("ANCT", 2025): "15000.00",
            ("CC TEV", 2025): "15000.00",
        },
        [("Appel à candidatures des start-up", date(2024, 9, 2))],
        [("Start-up hébergées", "start-up", "8")],
        ("CC TEV",),
    ),
    ExampleAction(
        "FA-04",
        "Couverture mobile 4G puis 5G de tout le territoire",
        Axis.FONCIER,
        KH,
        True,
        "Couvrir tout le territoire en réseau mobile 4G, puis 5G, zones d'activités en priorité.",
        date(2024, 1, 15),
        date(2026, 12, 31),
        {(2024, INV): "60000.00", (2025, INV): "60000.00"},
        {
            ("État", 2024): "30000.00",
            ("Région", 2024): "30000.00",
            ("État", 2025): "30000.00",
            ("Région", 2025): "30000.00",
        },
        [
            ("Cartographie des zones blanches", date(2024, 3, 29)),
            ("Zones d'activités couvertes en 4G", date(2024, 12, 31)),
        ],
        [("Zones d'activités couvertes", "%", "100")],
        ("État",),
    ),
    ExampleAction(
        "FA-05",
        "Relations entreprises – Éducation nationale",
        Axis.COMPETENCES,
        TP,
        True,
        "Intensifier les relations entreprises–Éducation nationale pour attirer les jeunes vers "
        "l'industrie et ses nouveaux métiers.",
        date(2024, 2, 1),
        date(2024, 12, 31),
        {(2024, FON): "35000.00"},
        {("Région", 2024): "20000.00", ("CC Val d'Amboise", 2024): "15000.00"},
        [
            ("Semaine de l'industrie : visites d'usines", date(2024, 3, 25)),
            ("Bilan des visites et stages", date(2024, 7, 5)),
        ],
        [("Élèves ayant visité une usine", "élèves", "600")],
        ("ERET", "GEIDA", "AICR", "Mission Locale"),
    ),
    ExampleAction(
        "FA-06",
        "Soutien aux 3 clubs d'entreprises par l'embauche de personnel",
        Axis.COMPETENCES,
        TP,
        True,
        "Financer un poste d'animation partagé entre ERET, AICR et GEIDA.",
        date(2024, 1, 2),
        date(2026, 12, 31),
        {(2024, FON): "45000.00", (2025, FON): "45000.00", (2026, FON): "45000.00"},
        {
            ("ANCT", 2024): "30000.00",
            ("Région", 2024): "15000.00",
            ("ANCT", 2025): "30000.00",
            ("Région", 2025): "15000.00",
            ("Région", 2026): "15000.00",
        },
        [("Recrutement de l'animateur", date(2024, 4, 2))],
        [("Entreprises adhérentes des clubs", "entreprises", "180")],
        ("ERET", "AICR", "GEIDA"),
    ),
    ExampleAction(
        "FA-07",
        "Plateforme Ressources humaines : extension aux TPE (créée en phase 1)",
        Axis.COMPETENCES,
        IR,
        True,
        "Accompagner les entreprises dans leurs problématiques de recrutement, de formation et "
        "d'attractivité : la plateforme RH, réussite de la phase 1, est étendue aux TPE.",
        date(2024, 2, 15),
        date(2025, 12, 31),
        {(2024, FON): "70000.00", (2025, FON): "70000.00"},
        {
            ("État", 2024): "25000.00",
            ("OPCO 2i", 2024): "20000.00",
            ("CC TEV", 2024): "25000.00",
            ("État", 2025): "25000.00",
            ("OPCO 2i", 2025): "20000.00",
            ("CC TEV", 2025): "25000.00",
        },
        [("Ouverture de la plateforme", date(2024, 6, 3))],
        [("Recrutements accompagnés", "recrutements", "120")],
        ("France Travail", "OPCO 2i", "UIMM"),
        Priority.HIGH,
    ),
    ExampleAction(
        "FA-08",
        "Animation du tiers-lieu « Le Rubixco » (créé en phase 1)",
        Axis.INNOVATION,
        KH,
        True,
        "Le tiers-lieu Le Rubixco de Montlouis-sur-Loire, créé en phase 1 : coworking, fablab "
        "et rencontres entre industriels, animés en 2024.",
        date(2024, 1, 2),
        date(2024, 12, 31),
        {(2024, FON): "50000.00"},
        {("CC TEV", 2024): "30000.00", ("Région", 2024): "20000.00"},
        [("Programme d'animation annuel", date(2024, 2, 28))],
        [("Événements organisés", "événements", "24")],
        ("CC TEV",),
    ),
    ExampleAction(
        "FA-09",
        "Observatoire du foncier économique disponible",
        Axis.FONCIER,
        NB,
        False,
        "Recenser et qualifier le foncier et l'immobilier d'entreprise disponibles.",
        date(2024, 3, 1),
        date(2024, 12, 31),
        {(2024, FON): "25000.00"},
        {("ANCT", 2024): "12500.00", ("CC BVC", 2024): "12500.00"},
        [("Inventaire des parcelles", date(2024, 6, 28))],
        [("Hectares qualifiés", "ha", "120")],
        ("CC BVC", "CC Castelrenaudais"),
    ),
    ExampleAction(
        "FA-10",
        "Requalification de friches industrielles",
        Axis.FONCIER,
        NB,
        False,
        "Étudier la reconversion de deux friches en zones d'accueil industriel.",
        date(2024, 9, 1),
        date(2026, 6, 30),
        {(2024, INV): "80000.00", (2025, INV): "220000.00"},
        {
            ("État", 2024): "40000.00",
            ("Région", 2024): "25000.00",
            ("CC BVC", 2024): "15000.00",
            ("État", 2025): "110000.00",
            ("Région", 2025): "75000.00",
            ("CC BVC", 2025): "35000.00",
        },
        [("Études de pollution des sols", date(2025, 2, 28))],
        [("Friches requalifiées", "sites", "2")],
        ("CC BVC",),
        Priority.LOW,
    ),
    ExampleAction(
        "FA-11",
        "Écologie industrielle et territoriale",
        Axis.TRANSITION_ECOLOGIQUE,
        LF,
        False,
        "Mutualiser les flux (déchets, énergie, eau) entre entreprises voisines.",
        date(2024, 5, 2),
        date(2025, 12, 31),
        {(2024, FON): "40000.00", (2025, FON): "30000.00"},
        {
            ("ADEME", 2024): "28000.00",
            ("Région", 2024): "12000.00",
            ("ADEME", 2025): "21000.00",
            ("Région", 2025): "9000.00",
        },
        [("Cartographie des flux", date(2024, 10, 31))],
        [("Synergies mises en place", "synergies", "10")],
        ("ADEME", "GEIDA"),
    ),
    ExampleAction(
        "FA-12",
        "Diagnostics énergie et décarbonation des PME",
        Axis.TRANSITION_ECOLOGIQUE,
        LF,
        False,
        "Proposer aux PME un diagnostic énergie et un plan de décarbonation.",
        date(2024, 4, 2),
        date(2025, 3, 31),
        {(2024, FON): "60000.00"},
        {("ADEME", 2024): "42000.00", ("CC Val d'Amboise", 2024): "18000.00"},
        [("30 diagnostics réalisés", date(2024, 12, 13))],
        [("PME diagnostiquées", "PME", "30")],
        ("ADEME",),
    ),
]


def load_example(uow: UnitOfWork, initial_state: State = State.DRAFT) -> Territory:
    """Add the example territory and its plan to the unit of work (the caller commits)."""
    session = uow.session
    territory = Territory(
        code=TERRITORY_CODE,
        name="Grand Est Touraine",
        department="Indre-et-Loire",
        region="Centre-Val de Loire",
        is_example=True,
    )
    session.add(territory)
    session.flush()
    assert territory.id is not None
    orgs: dict[str, Organisation] = {}
    for name, short, org_kind, is_funder in ORGANISATIONS:
        orgs[short] = Organisation(
            territory_id=territory.id,
            name=name,
            short_name=short,
            kind=org_kind,
            is_funder=is_funder,
        )
        session.add(orgs[short])
    session.flush()
    people: dict[str, Person] = {}
    for full_name, email, org, position, roles in PEOPLE:
        people[email] = Person(
            territory_id=territory.id,
            full_name=full_name,
            email=email,
            organisation_id=orgs[org].id,
            position=position,
        )
        session.add(people[email])
        session.flush()
        for role in roles:
            session.add(PersonRole(person_id=_id(people[email]), role=role))
    for spec in ACTIONS:
        action = ActionSheet(
            territory_id=territory.id,
            number=spec.number,
            title=spec.title,
            description=spec.description,
            axis=spec.axis,
            pilot_id=people[spec.pilot].id,
            firm_commitment=spec.firm,
            priority=spec.priority,
            start_date=spec.start,
            end_date=spec.end,
            state=initial_state,
        )
        session.add(action)
        session.flush()
        assert action.id is not None
        for (year, kind), amount in spec.budget.items():
            session.add(
                BudgetLine(action_id=action.id, year=year, kind=kind, amount=Decimal(amount))
            )
        for (funder_name, year), requested in spec.funding.items():
            dates = _funding_dates(spec.start, year)
            session.add(
                Funding(
                    action_id=action.id,
                    funder_id=_id(orgs[funder_name]),
                    year=year,
                    requested=Decimal(requested),
                    dossier_due=dates.get("dossier_due"),
                    decision_expected=dates.get("decision_expected"),
                    payment_expected=dates.get("payment_expected"),
                )
            )
        for title, due in spec.milestones:
            session.add(Milestone(action_id=action.id, title=title, due_date=due))
        for name, unit, target in spec.indicators:
            session.add(
                Indicator(action_id=action.id, name=name, unit=unit, target=Decimal(target))
            )
        for partner in spec.partners:
            session.add(ActionPartner(action_id=action.id, organisation_id=_id(orgs[partner])))
    session.flush()
    return territory


def _id(row: Organisation | Person) -> int:
    assert row.id is not None, "flush before reading ids"
    return row.id


def _months_after(day: date, months: int) -> date:
    month = day.month - 1 + months
    return date(day.year + month // 12, month % 12 + 1, min(day.day, 28))


def _funding_dates(start: date, year: int) -> dict[str, date | None]:
    """One multi-year dossier per funder: filed and decided for the start year's tranche
    (dossier due at the start, decision two months later, a first payment at six months);
    a later year's tranche only has its payment, expected at the end of June. Every date is a
    French working day (no 1 January, Sunday or Toussaint)."""
    if year == start.year:
        return {
            "dossier_due": working_day_on_or_after(start.replace(day=1)),
            "decision_expected": working_day_on_or_after(_months_after(start, 2)),
            "payment_expected": working_day_on_or_after(_months_after(start, 6)),
        }
    return {"payment_expected": working_day_on_or_after(date(year, 6, 30))}
