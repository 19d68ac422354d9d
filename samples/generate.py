#!/usr/bin/env python3
"""Generates Weir's synthetic sample data: samples/tweets.jsonl and samples/news.jsonl.

Everything here is invented for Weir: people, teams, companies, places and
publications are fictional, and every URL uses the reserved `.example` TLD.
The output is deterministic (fixed seed, fixed reference date), so running
this script again reproduces the committed files byte for byte:

    python3 samples/generate.py            # writes samples/*.jsonl
    python3 samples/generate.py --check    # fails if the committed files differ

Record shapes follow docs/schema.md (the `tweets` and `news` input topics).

CONTENT WARNING: the OFFENSIVE and HATEFUL phrase banks below contain
profanity, insults and slurs. They exist to exercise the hate-speech
classifier (hatesonar, a bag-of-words model that reacts to such words) and are
deliberately brief, generic and aimed at no real person.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

SEED = 20261126
# "Now" for the data set: everything happened in the 7 days before it.
REFERENCE = datetime(2026, 11, 26, 12, 0, 0, tzinfo=timezone.utc)
WINDOW = timedelta(days=7)
TWEET_COUNT = 300
NEWS_COUNT = 200
OUT_DIR = Path(__file__).resolve().parent

# --------------------------------------------------------------------------
# Shared fictional world
# --------------------------------------------------------------------------

TEAMS = [
    "Harbor Hawks", "Eskerfield Rovers", "Tarrow Titans", "Kestrel Bay Mariners",
    "Quillon Comets", "New Harwick Foxes", "Solvaine Stags", "Brindle Coast Owls",
]
ATHLETES = [
    "Mara Ellison", "Tomas Vey", "Ines Calloway", "Jonah Prewitt", "Dalia Okafor",
    "Rune Halvard", "Keiko Marsh", "Felix Arandt",
]
COMPANIES = [
    "Lumora Systems", "Brightwell Foods", "Kestrel Motors", "Northgate Bank",
    "Orbis Freight", "Halcyon Pharma", "Tidewater Energy", "Quantix Labs",
    "Cobalt Ridge Mining", "Vireo Airlines",
]
PRODUCTS = [
    "Lumora Pulse 7", "NimbusOS 12", "Quantix Q3 chip", "Vireo Cloud", "Kestrel EV-2",
    "Pebble Buds", "Atlas Notebook Pro", "Drift smartwatch",
]
CITIES = [
    "Port Avalene", "Marrowdale", "Eskerfield", "Tarrow", "Quillon", "New Harwick",
    "Castor Reach", "Solvaine",
]
COUNTRIES = ["Velmora", "Drestia", "Kalvonia", "Osterland", "Sarnia Minor", "Belcaro"]
INSTITUTES = [
    "Halden University", "the Brindle Institute of Marine Science",
    "the Solvaine Space Agency", "the Castor Reach Observatory", "Marrowdale Medical College",
]
LEADERS = ["President Ilsa Varga", "Prime Minister Owen Tarrant", "Chancellor Mira Adebayo",
           "Minister Paul Lindqvist", "Mayor Rosa Delacroix"]

# --------------------------------------------------------------------------
# News
# --------------------------------------------------------------------------

# (name, id or None, domain): NewsAPI reports no id for some sources.
PUBLICATIONS = {
    "harbor": ("The Harbor Ledger", "the-harbor-ledger", "harborledger.example"),
    "meridian": ("Meridian Daily", "meridian-daily", "meridiandaily.example"),
    "copperline": ("Copperline Business Review", "copperline-business-review", "copperline.example"),
    "aster": ("Aster Science Weekly", "aster-science-weekly", "asterscience.example"),
    "granite": ("Granite Sports Wire", "granite-sports-wire", "granitesports.example"),
    "pixel": ("Pixel & Circuit", "pixel-and-circuit", "pixelandcircuit.example"),
    "lantern": ("The Lantern Post", None, "lanternpost.example"),
    "northfield": ("Northfield Courier", None, "northfieldcourier.example"),
}

DESKS = {
    "world": ["harbor", "meridian", "lantern", "northfield"],
    "business": ["copperline", "meridian", "harbor", "northfield"],
    "science": ["aster", "lantern", "meridian"],
    "sports": ["granite", "northfield", "lantern"],
    "tech": ["pixel", "copperline", "meridian"],
}

AUTHORS = [
    "Ada Whitcombe", "Bram Kessler", "Chiara Monti", "Desmond Achebe", "Elin Sorensen",
    "Farid Haddad", "Greta Novak", "Hugo Lamarre", "Isla Fenwick", "Jun Takeda",
    "Kofi Mensah", "Lena Brandt",
]

# Headline and standfirst templates per desk and intended sentiment. Slots:
# {team} {team2} {athlete} {company} {product} {city} {country} {country2}
# {institute} {leader} {n} {pct}
HEADLINES = {
    ("world", "positive"): [
        "{country} and {country2} sign historic peace agreement, ending decades of conflict",
        "Celebrations in {city} as flood defences save thousands of homes",
        "{leader} praised for swift, generous relief effort after storm",
        "Landmark deal brings clean water to {n} villages in {country}",
        "Hope returns to {city} as rebuilt hospital opens its doors",
        "{country} wins international award for its successful literacy programme",
        "Volunteers in {city} rescue stranded families, hailed as heroes",
        "Child poverty in {country} falls to a record low, new figures show",
    ],
    ("world", "negative"): [
        "Deadly floods kill {n} in {country} as rescue efforts stall",
        "Violent protests erupt in {city} after disputed election",
        "{country} accuses {country2} of sabotage as border crisis deepens",
        "Earthquake devastates {city}, leaving thousands homeless",
        "Famine fears grow in {country} after failed harvest",
        "Corruption scandal forces {leader} to resign in disgrace",
        "Wildfire destroys {n} homes near {city}; residents flee in panic",
        "Hostage crisis in {city} ends in tragedy",
    ],
    ("world", "neutral"): [
        "{leader} to visit {country2} next week",
        "{country} parliament begins second reading of budget bill",
        "Census results for {city} to be published on Thursday",
        "{country} and {country2} hold talks on fishing quotas",
        "Polls open in {city} municipal election",
        "{country} names new ambassador to {country2}",
        "Ministers from {n} countries meet in {city} to discuss trade rules",
        "{leader} outlines schedule for the coming parliamentary session",
    ],
    ("business", "positive"): [
        "{company} shares soar after record quarterly profit",
        "{company} to create {n} new jobs in {city}",
        "Strong holiday sales boost {company} as shoppers return",
        "{company} wins major contract, lifting hopes for growth",
        "Markets rally as inflation in {country} eases to {pct}%",
        "{company} beats expectations and raises its dividend",
        "Small businesses in {city} enjoy best year on record",
        "{company} praised for generous pay rise for all staff",
    ],
    ("business", "negative"): [
        "{company} cuts {n} jobs as demand collapses",
        "{company} shares crash after profit warning",
        "Fraud probe hits {company}; executives under investigation",
        "Recession fears grow as factory output in {country} plunges",
        "{company} fined over toxic spill near {city}",
        "Bankruptcy looms for {company} after failed rescue talks",
        "Unemployment in {country} rises to worst level in a decade",
        "Investors lose billions as {company} scandal deepens",
    ],
    ("business", "neutral"): [
        "{company} to hold annual shareholder meeting in {city}",
        "{company} reports third-quarter results",
        "Central bank of {country} holds its benchmark rate at {pct}%",
        "{company} appoints new chief financial officer",
        "{company} completes move of headquarters to {city}",
        "{company} and {company2} confirm merger talks",
        "Quarterly trade figures for {country} published",
        "{company} to publish its annual report on Monday",
    ],
    ("science", "positive"): [
        "Breakthrough at {institute} offers new hope for patients with rare disease",
        "Scientists celebrate successful launch of deep-space probe",
        "{institute} researchers discover thriving coral reef off {city}",
        "New vaccine proves highly effective in large trial",
        "Endangered sea turtles make remarkable recovery near {city}",
        "Astronomers at {institute} find promising Earth-like planet",
        "Clean energy milestone: {country} powered by renewables for a full week",
        "{institute} wins prize for brilliant work on cheap water filters",
    ],
    ("science", "negative"): [
        "Coral bleaching kills vast stretches of reef near {city}",
        "Drug trial halted after serious side effects, {institute} says",
        "Rocket explodes on launch pad, destroying weather satellite",
        "Toxic algae bloom poisons rivers across {country}",
        "Study warns of alarming collapse in insect populations",
        "Deadly virus outbreak spreads in {city}, health officials fear",
        "Funding cuts threaten to shut down {institute}",
        "Record heat wave kills crops and livestock across {country}",
    ],
    ("science", "neutral"): [
        "{institute} publishes new survey of the northern sky",
        "Researchers map the sea floor off {city}",
        "{institute} to open new laboratory in {city}",
        "Study examines sleep patterns of {n} volunteers",
        "Probe enters orbit around outer planet, {institute} confirms",
        "Scientists measure ocean temperatures at {n} sites",
        "{institute} releases data from ten-year climate study",
        "New telescope begins observations from {city}",
    ],
    ("sports", "positive"): [
        "{team} win thrilling final to lift the championship trophy",
        "{athlete} breaks world record in stunning victory",
        "{team} celebrate promotion after brilliant season",
        "Fans cheer as {athlete} returns from injury with a win",
        "{team} crush {team2} 5-0 in dominant display",
        "Heroic {athlete} inspires comeback win for {team}",
        "{team} youngsters shine in impressive cup run",
        "{athlete} named player of the year after outstanding season",
    ],
    ("sports", "negative"): [
        "{team} suffer humiliating defeat to {team2}",
        "{athlete} ruled out for the season with serious injury",
        "Doping scandal rocks {team} as {athlete} is banned",
        "{team} relegated after disastrous campaign",
        "Violence mars {team} v {team2} as fans clash",
        "{team} sack coach after worst start in club history",
        "{athlete} fails to qualify after painful fall",
        "Crisis at {team} deepens with fifth straight loss",
    ],
    ("sports", "neutral"): [
        "{team} host {team2} on Saturday",
        "{team} confirm squad for next week's cup tie",
        "Draw for the quarter-finals takes place in {city}",
        "{athlete} to compete in the indoor series",
        "{team} announce pre-season schedule",
        "{team2} and {team} meet for the 100th time",
        "League publishes fixtures for the new season",
        "{athlete} signs one-year contract with {team}",
    ],
    ("tech", "positive"): [
        "{product} wins praise for superb battery life",
        "{company} unveils brilliant new {product}, fans delighted",
        "Free broadband programme connects {n} homes in {city}",
        "{product} update fixes bugs and makes apps faster",
        "{company} open-sources its translation tools, a big win for developers",
        "Reviewers love the {product}: the best in its class",
        "Startup in {city} raises funding to improve rural internet",
        "{company} celebrates successful launch of {product}",
    ],
    ("tech", "negative"): [
        "Massive data breach at {company} exposes millions of customers",
        "{product} recalled after batteries catch fire",
        "Outage cripples {product} for hours, angering users",
        "{company} accused of spying on users, faces lawsuit",
        "Ransomware attack paralyses hospitals in {city}",
        "{product} launch ruined by crashes and bugs",
        "{company} fined over illegal tracking of children",
        "Hackers steal passwords in {company} security failure",
    ],
    ("tech", "neutral"): [
        "{company} announces {product} release date",
        "{product} to get software update in December",
        "{company} opens developer conference in {city}",
        "{company} changes the pricing of {product} subscriptions",
        "{product} now available in {country}",
        "{company} publishes transparency report",
        "{company} to phase out older models of {product}",
        "Specifications of {product} published ahead of launch",
    ],
}

STANDFIRSTS = {
    "positive": [
        "Officials described the result as a wonderful success and thanked everyone involved.",
        "The good news was welcomed with relief and celebration.",
        "Experts say the improvement is impressive and likely to last.",
        "Supporters praised the outcome as a great step forward.",
        "It is the best result in years, and optimism is growing.",
    ],
    "negative": [
        "Critics warned the situation could get worse in the coming weeks.",
        "The news was met with anger, fear and grief.",
        "Officials admitted serious failures and said the damage is severe.",
        "Many people are suffering, and the crisis shows no sign of ending.",
        "Analysts called it a painful blow and a terrible setback.",
    ],
    "neutral": [
        "Further details are expected later this week.",
        "The schedule was confirmed in a statement on Tuesday.",
        "The figures cover the period from July to September.",
        "A spokesperson said the plans are set out in a public document.",
        "The meeting will take place at the usual venue.",
    ],
}

# Body excerpts; some carry markup and HTML entities, as feeds deliver them,
# for text-clean to strip and decode.
BODIES = [
    "<p>{lead} Reporting by {author}.</p>",
    "{lead} More details will follow &hellip;",
    "<p>{lead}</p><p>Read more at {domain}.</p>",
    "{lead} &quot;We will keep everyone informed,&quot; a spokesperson said.",
    "{lead} The statement (in full) is available on the publisher&#39;s site.",
    "{lead} Q&amp;A sessions are planned for next week.",
    "{lead}",
]


def news_slug(title: str) -> str:
    words = "".join(c.lower() if c.isalnum() else " " for c in title).split()
    return "-".join(words[:8])


def fill(template: str, rng: random.Random) -> str:
    team, team2 = rng.sample(TEAMS, 2)
    company, company2 = rng.sample(COMPANIES, 2)
    country, country2 = rng.sample(COUNTRIES, 2)
    return template.format(
        team=team, team2=team2, athlete=rng.choice(ATHLETES), company=company,
        company2=company2, product=rng.choice(PRODUCTS), city=rng.choice(CITIES),
        country=country, country2=country2, institute=rng.choice(INSTITUTES),
        leader=rng.choice(LEADERS), n=rng.choice([12, 40, 75, 120, 300, 450, 1200, 2500]),
        pct=rng.choice(["2.1", "2.5", "3.0", "3.75", "4.25"]),
    )


def capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def random_moment(rng: random.Random) -> datetime:
    seconds = rng.randrange(int(WINDOW.total_seconds()))
    return REFERENCE - WINDOW + timedelta(seconds=seconds)


def make_news(rng: random.Random) -> list[dict]:
    keys = sorted(HEADLINES)
    items: list[dict] = []
    seen_titles: set[str] = set()
    seen_urls: set[str] = set()
    # Cycle desks and sentiments evenly, then shuffle the order.
    plan = [keys[i % len(keys)] for i in range(NEWS_COUNT)]
    rng.shuffle(plan)
    for desk, sentiment in plan:
        for _ in range(100):
            title = capitalise(fill(rng.choice(HEADLINES[(desk, sentiment)]), rng))
            if title not in seen_titles:
                break
        else:
            raise SystemExit(f"cannot find a new {desk}/{sentiment} headline; add templates")
        seen_titles.add(title)
        publication = rng.choice(DESKS[desk])
        name, source_id, domain = PUBLICATIONS[publication]
        moment = random_moment(rng)
        url = f"https://{domain}/{desk}/{moment:%Y/%m/%d}/{news_slug(title)}"
        suffix = 2
        while url in seen_urls:
            url = f"https://{domain}/{desk}/{moment:%Y/%m/%d}/{news_slug(title)}-{suffix}"
            suffix += 1
        seen_urls.add(url)
        description = rng.choice(STANDFIRSTS[sentiment])
        item: dict = {
            "id": hashlib.sha256(url.encode()).hexdigest()[:32],
            "title": title,
            "description": description,
        }
        author = rng.choice(AUTHORS) if rng.random() < 0.8 else None
        if rng.random() < 0.75:
            lead = f"{title}. {description}"
            item["content"] = rng.choice(BODIES).format(
                lead=lead, author=author or "our staff", domain=domain)
        item["url"] = url
        item["source"] = {"id": source_id, "name": name} if source_id else {"name": name}
        if author:
            item["author"] = author
        item["published_at"] = iso(moment)
        item["feed"] = "sample"
        items.append(item)
    items.sort(key=lambda i: (i["published_at"], i["id"]))
    return items


# --------------------------------------------------------------------------
# Tweets
# --------------------------------------------------------------------------

SCREEN_NAMES = [
    "maple_runner", "techtinkerer42", "harborhawks_fan", "quietcoder", "sunny_side_sal",
    "rovers_til_i_die", "datadriven_dee", "breadandbutter", "nightowl_nina", "grumpy_commuter",
    "astro_amir", "the_real_jojo", "coffee_cortex", "pixelpushr", "marrowdale_mum",
    "weatherwatch_kb", "late_to_the_party", "gigi_goes_green", "stats_guy_99", "noodle_lover",
    "boatsandbits", "foxes_faithful", "bookish_bea", "trailmix_tom", "linux_lars",
    "fernando_films", "ella_on_air", "comet_chaser", "budget_barista", "sofa_scientist",
    "orbit_olly", "titans_talk", "kettle_on_kate", "mild_opinions", "vinyl_vic",
    "greenthumb_gus", "petra_paints", "hoops_hannah", "market_mo", "synthwave_sam",
]

EMOJI_POS = ["🎉", "🙌", "😍", "🔥", "💪", "😊", "👏", "❤️", "🥳", "✨"]
EMOJI_NEG = ["😡", "😞", "🤬", "😤", "💔", "😭", "🙄", "😩"]
EMOJI_NEU = ["👀", "📅", "📰", "🤔", "⏰", "📍"]

HASHTAGS = {
    "sports": ["matchday", "football", "derby", "championship", "COYH", "sport"],
    "tech": ["tech", "gadgets", "AI", "opensource", "cybersecurity", "devlife"],
    "news": ["breaking", "news", "politics", "election", "climate"],
    "weather": ["weather", "storm", "heatwave", "sunshine"],
    "life": ["mondaymood", "coffee", "weekend", "foodie", "commute"],
    "culture": ["music", "movies", "books", "nowplaying", "art"],
    "science": ["space", "science", "astronomy", "ocean"],
}

# Plain tweets by topic and sentiment. Slots as in HEADLINES, plus {headline}
# (a generated news headline), {emo} and {score}.
TWEETS = {
    ("sports", "positive"): [
        "What a comeback by the {team}! {score} and the crowd went wild {emo}",
        "{athlete} is on another level this season. Absolutely brilliant {emo}",
        "So proud of the {team} tonight, that second half was magic {emo}",
        "Best atmosphere I've ever seen at a {team} game {emo}",
        "{athlete} with a perfect finish. Love this team {emo}",
        "Clean sheet, three points and sunshine. Great day to be a {team} fan {emo}",
    ],
    ("sports", "negative"): [
        "Another home loss for the {team}. Terrible defending, awful finishing {emo}",
        "That referee decision was a disgrace. We were robbed tonight {emo}",
        "{team} look tired, slow and lost. Worst performance of the season {emo}",
        "Losing {score} to the {team2}? Embarrassing. Heads should roll {emo}",
        "Injured again. Gutted for {athlete}, this season is cursed {emo}",
    ],
    ("sports", "neutral"): [
        "{team} vs {team2} kicks off at 3pm on Saturday {emo}",
        "Lineups are out for {team} v {team2}",
        "{athlete} starts on the bench today according to the team sheet",
        "Half time: {team} {score} {team2}",
        "Tickets for the {team} cup game go on sale Monday {emo}",
    ],
    ("tech", "positive"): [
        "Just upgraded to the {product} and wow, it is fast {emo}",
        "The new {product} battery lasts two full days. Impressed {emo}",
        "Shoutout to the {company} devs, the latest update fixed everything {emo}",
        "Finally shipped my side project. Feels amazing {emo}",
        "Open source maintainers are heroes. Thank you all {emo}",
    ],
    ("tech", "negative"): [
        "{product} crashed three times today. I'm so done with it {emo}",
        "Another data breach at {company}? Unbelievable. Change your passwords {emo}",
        "Why does every update make my {product} slower and worse {emo}",
        "{company} support is useless. Two weeks and no answer {emo}",
        "The {product} outage ruined my whole morning {emo}",
    ],
    ("tech", "neutral"): [
        "{company} announced the {product} release date today {emo}",
        "Anyone tried the {product} beta yet?",
        "Reading the {company} transparency report this afternoon {emo}",
        "Migrating our services to {product} this week",
        "Conference talk slides are up, link below {emo}",
    ],
    ("news", "positive"): [
        "Good news for once: {headline} {emo}",
        "This made my day. {headline} {emo}",
        "Finally some hope. {headline} {emo}",
        "Love to see it! {headline} {emo}",
    ],
    ("news", "negative"): [
        "This is awful. {headline} {emo}",
        "Heartbreaking news from {city}. {headline} {emo}",
        "Terrible. {headline} {emo}",
        "Scary times. {headline} {emo}",
    ],
    ("news", "neutral"): [
        "{headline}",
        "Reading: {headline} {emo}",
        "Via the paper this morning: {headline}",
        "In case you missed it: {headline}",
    ],
    ("weather", "positive"): [
        "Gorgeous sunny morning in {city} {emo}",
        "Finally a warm weekend in {city}. Beach time {emo}",
        "That sunset over {city} tonight was beautiful {emo}",
    ],
    ("weather", "negative"): [
        "Storm knocked out the power in {city} again. Miserable {emo}",
        "Flooded streets in {city} and my train is cancelled {emo}",
        "This heat is unbearable, {city} feels like an oven {emo}",
    ],
    ("weather", "neutral"): [
        "Forecast for {city}: cloudy, 14 degrees, light wind {emo}",
        "Rain expected in {city} from about 4pm",
        "First frost of the season reported near {city} {emo}",
    ],
    ("life", "positive"): [
        "Best coffee in {city} is at the little place by the station {emo}",
        "Made bread from scratch and it actually worked {emo}",
        "Long walk, good book, happy dog. Perfect Sunday {emo}",
        "My neighbour fixed my bike for free. People are kind {emo}",
    ],
    ("life", "negative"): [
        "Train delayed 40 minutes again. Late for work, great {emo}",
        "Burnt the dinner, spilled the wine, what a night {emo}",
        "Rent went up again. How is anyone supposed to live here {emo}",
        "Stuck in traffic for an hour. I hate Mondays {emo}",
    ],
    ("life", "neutral"): [
        "Grocery run done. Back home by 6",
        "Trying a new recipe tonight, lentils and rice {emo}",
        "Moving apartments next week, boxes everywhere",
        "Library closes early on Fridays in {city}",
    ],
    ("culture", "positive"): [
        "That concert in {city} last night was incredible {emo}",
        "Finished the new novel in one sitting. Loved every page {emo}",
        "Rock &amp; roll is alive and well, what a show {emo}",
        "This film is a masterpiece. Go see it {emo}",
    ],
    ("culture", "negative"): [
        "Waited two years for this sequel and it is boring {emo}",
        "Concert cancelled an hour before doors. Furious {emo}",
        "Worst album of the year, sorry not sorry {emo}",
    ],
    ("culture", "neutral"): [
        "Now playing: the new record from the Quillon Quartet {emo}",
        "Exhibition opens at the {city} gallery on Thursday",
        "Book club picks for December are out {emo}",
    ],
    ("science", "positive"): [
        "Watched the launch live. Absolutely stunning {emo}",
        "Amazing images from the new telescope at {institute} {emo}",
        "Huge congrats to the team at {institute}, what a discovery {emo}",
    ],
    ("science", "negative"): [
        "Funding cuts at {institute} are a disaster for research {emo}",
        "Reef bleaching near {city} is devastating to watch {emo}",
    ],
    ("science", "neutral"): [
        "Lecture on ocean currents at {institute} tonight, 7pm",
        "Meteor shower peaks on Tuesday night {emo}",
        "New dataset released by {institute} today",
    ],
}

FOREIGN = [
    ("es", "¡Qué partido tan bueno de los {team}! {emo}"),
    ("es", "Hoy llueve mucho en {city}, qué día tan triste {emo}"),
    ("fr", "Super concert hier soir à {city} {emo}"),
    ("fr", "Encore un retard de train ce matin, c'est pénible {emo}"),
    ("de", "Endlich Wochenende in {city} {emo}"),
    ("de", "Das Spiel der {team} war heute wirklich schlecht {emo}"),
    ("it", "Che bella giornata a {city} {emo}"),
    ("pt", "Que jogo incrível dos {team} hoje {emo}"),
    ("es", "Acabo de leer las noticias sobre {country}, increíble"),
    ("fr", "Nouvelle mise à jour du {product} disponible"),
]

# CONTENT WARNING: profanity and insults (about 10% of tweets).
OFFENSIVE = [
    "shut up you stupid bitch",
    "this ref is a fucking idiot",
    "{team} fans are dumbass bitches",
    "what a shit show from the {team} tonight",
    "my landlord is a greedy bitch",
    "stop whining you little bitch",
    "who the fuck schedules a meeting at 7am",
    "this traffic is total fucking bullshit",
    "lmao you are a fucking clown",
    "get off my timeline you dumb ass",
    "{product} is fucking garbage",
    "that striker is a lazy piece of shit",
    "nobody asked you bitch",
    "what the fuck was that defending",
    "my ex is a lying ass hoe",
    "shut your mouth you pussy",
    "{company} can kiss my ass",
    "these bitches stay talking nonsense",
    "fuck this weather honestly",
    "you talk shit every single day",
    "bro you are a whole ass idiot",
    "damn hoes always in my mentions",
    "this coach is a clueless fucking dickhead",
    "the {team} keeper is a useless bitch",
    "screw you and your shitty opinions bitch",
    "another fucking delay on the {city} line",
    "stupid ass referee ruined the game",
    "my boss is a bitch ass loser",
    "fuck off with your spam",
    "these fake ass influencers make me sick",
]

# CONTENT WARNING: slurs (about 4% of tweets). Brief, generic, synthetic.
HATEFUL = [
    "go back where you came from you filthy faggot",
    "no faggots allowed in my bar",
    "all these niggers ruin the neighbourhood",
    "fags like you should stay quiet",
    "you people are all retards",
    "that dyke needs to shut up",
    "get these niggers out of here",
    "stupid niggas always start trouble",
    "queers and homos are disgusting",
    "these queers make me sick",
    "white trash cracker hoes",
    "bunch of faggots on my timeline",
    # A known miss: the model has too little weight on these slurs.
    "send the wetbacks and beaners home",
]

MEDIA_DOMAINS = [
    "harborledger.example", "meridiandaily.example", "pixelandcircuit.example",
    "granitesports.example", "asterscience.example", "photos.example", "video.example",
]

ENTITY_DECORATIONS = [
    lambda t: t.replace(" and ", " &amp; ", 1),
    lambda t: t + " &lt;3",
    lambda t: f"&quot;{t}&quot;",
    lambda t: t + " &gt;&gt; thread",
]


class Users:
    def __init__(self, rng: random.Random):
        self.users = []
        for i, name in enumerate(SCREEN_NAMES):
            user = {"id": str(10_000_000 + 7919 * (i + 1)), "screen_name": name}
            if rng.random() < 0.9:
                user["followers_count"] = int(rng.lognormvariate(6.0, 1.6))
            self.users.append(user)

    def pick(self, rng: random.Random) -> dict:
        return dict(rng.choice(self.users))


def snowflake(moment: datetime, sequence: int) -> str:
    """A time-ordered 64-bit id in the style of tweet ids."""
    epoch_ms = 1288834974657
    ms = int(moment.timestamp() * 1000)
    return str(((ms - epoch_ms) << 22) | (sequence & 0x3FFFFF))


def decorate(text: str, topic: str, rng: random.Random, users: Users) -> str:
    """Adds the furniture of real posts: hashtags, mentions, links, entities."""
    if rng.random() < 0.45:
        tags = rng.sample(HASHTAGS[topic], rng.choice([1, 1, 2]))
        text += " " + " ".join("#" + t for t in tags)
    if rng.random() < 0.2:
        text = f"@{users.pick(rng)['screen_name']} " + text
    if rng.random() < 0.12:
        text += f" cc @{users.pick(rng)['screen_name']}"
    if rng.random() < 0.25:
        text += f" https://{rng.choice(MEDIA_DOMAINS)}/p/{rng.randrange(10**6, 10**7):x}"
    if rng.random() < 0.08:
        text = rng.choice(ENTITY_DECORATIONS)(text)
    return text


def make_tweets(rng: random.Random, news: list[dict]) -> list[dict]:
    users = Users(rng)
    # Reactions match the tone of the story they quote.
    tone = {line: sentiment for sentiment, lines in STANDFIRSTS.items() for line in lines}
    headlines: dict[str, list[str]] = {"positive": [], "negative": [], "neutral": []}
    for item in news:
        headlines[tone[item["description"]]].append(item["title"])
    n_offensive = len(OFFENSIVE)
    n_hateful = len(HATEFUL)
    n_foreign = len(FOREIGN)
    n_plain = TWEET_COUNT - n_offensive - n_hateful - n_foreign
    keys = sorted(TWEETS)
    # Weight topics: sport, tech and news reactions dominate, as on the real thing.
    weights = {"sports": 5, "tech": 4, "news": 5, "weather": 2, "life": 3, "culture": 2, "science": 2}
    sentiments = {"positive": 4, "negative": 4, "neutral": 3}
    key_weights = [weights[t] * sentiments[s] for t, s in keys]

    drafts: list[tuple[str, str | None, str]] = []  # (text, lang, topic)
    seen: set[str] = set()

    def add(text: str, lang: str | None, topic: str) -> bool:
        if text in seen:
            return False
        seen.add(text)
        drafts.append((text, lang, topic))
        return True

    while sum(1 for d in drafts if d[2] != "special") < n_plain:
        topic, sentiment = rng.choices(keys, key_weights)[0]
        emo = {"positive": EMOJI_POS, "negative": EMOJI_NEG, "neutral": EMOJI_NEU}[sentiment]
        template = rng.choice(TWEETS[(topic, sentiment)])
        text = fill(template.replace("{headline}", "{{headline}}")
                    .replace("{emo}", "{{emo}}").replace("{score}", "{{score}}"), rng)
        text = text.format(
            headline=rng.choice(headlines[sentiment]),
            emo=rng.choice(emo) if rng.random() < 0.8 else "",
            score=f"{rng.randrange(0, 5)}-{rng.randrange(0, 5)}",
        ).strip()
        text = decorate(text, topic, rng, users)
        if rng.random() < 0.1:
            text = f"RT @{users.pick(rng)['screen_name']}: {text}"
        add(text, "en", topic)

    for lang, template in FOREIGN:
        text = fill(template.replace("{emo}", "{{emo}}"), rng).format(emo=rng.choice(EMOJI_POS))
        add(text, lang, "special")
    for template in OFFENSIVE:
        text = fill(template, rng)
        if rng.random() < 0.3:
            text = f"@{users.pick(rng)['screen_name']} {text}"
        add(text, "en", "special")
    for text in HATEFUL:
        add(text, "en", "special")
    if len(drafts) != TWEET_COUNT:
        raise SystemExit(f"made {len(drafts)} tweets, expected {TWEET_COUNT} (duplicates?)")

    moments = sorted(random_moment(rng) for _ in drafts)
    rng.shuffle(drafts)
    tweets = []
    for seq, ((text, lang, _topic), moment) in enumerate(zip(drafts, moments)):
        tweet_id = snowflake(moment, seq)
        user = users.pick(rng)
        tweet: dict = {"id": tweet_id, "text": text, "created_at": iso(moment)}
        # The source omits the language now and then.
        if lang and rng.random() < 0.95:
            tweet["lang"] = lang
        tweet["user"] = user
        tweet["source"] = "sample"
        tweet["url"] = f"https://social.example/{user['screen_name']}/status/{tweet_id}"
        if rng.random() < 0.85:
            tweet["retweet_count"] = int(rng.expovariate(1 / 12))
            tweet["like_count"] = int(rng.expovariate(1 / 40))
        tweets.append(tweet)
    return tweets


# --------------------------------------------------------------------------


def render(records: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="compare with the files on disk instead of writing them")
    args = parser.parse_args()
    rng = random.Random(SEED)
    news = make_news(rng)
    tweets = make_tweets(rng, news)
    outputs = {OUT_DIR / "news.jsonl": render(news), OUT_DIR / "tweets.jsonl": render(tweets)}
    stale = []
    for path, text in outputs.items():
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(path.name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(OUT_DIR.parent)} ({text.count(chr(10))} records)")
    if stale:
        print(f"out of date: {', '.join(stale)}; run python3 samples/generate.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
